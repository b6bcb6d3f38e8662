"""BatchNorm re-estimation: moving statistics become the mean over batches."""

import numpy as np
import tf_keras

from remax_tf.training import batch_norm_stats


def _model():
    inputs = tf_keras.Input([4, 4, 3])
    x = tf_keras.layers.Conv2D(2, 1, use_bias=False, name="conv")(inputs)
    x = tf_keras.layers.BatchNormalization(momentum=0.99, name="bn")(x)
    return tf_keras.Model(inputs, x)


def test_moving_statistics_are_the_mean_of_the_batch_statistics():
    model = _model()
    model.get_layer("conv").set_weights([np.eye(3, 2)[None, None].astype(np.float32)])
    rng = np.random.default_rng(0)
    batches = [
        rng.normal(loc, scale, (8, 4, 4, 3)).astype(np.float32)
        for loc, scale in ((1.0, 1.0), (3.0, 2.0), (-2.0, 0.5), (9.0, 1.0))
    ]
    used = batch_norm_stats.reestimate(model, iter(batches), num_batches=3)
    assert used == 3
    bn = model.get_layer("bn")
    means = [b[..., :2].mean(axis=(0, 1, 2)) for b in batches[:3]]
    # Keras keeps the unbiased (n - 1) batch variance in the moving average.
    variances = [b[..., :2].var(axis=(0, 1, 2), ddof=1) for b in batches[:3]]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean(means, 0), rtol=1e-5)
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), np.mean(variances, 0), rtol=1e-3
    )
    # The layer's own momentum is back, and the weights did not move.
    assert bn.momentum == 0.99
    np.testing.assert_array_equal(bn.gamma.numpy(), np.ones(2, np.float32))


def test_no_batch_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="no training batch"):
        batch_norm_stats.reestimate(_model(), iter([]), num_batches=5)
