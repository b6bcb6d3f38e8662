"""Tests of remax_tf.model.layers.drop_path (stochastic depth)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.layers.drop_path import drop_path_keep_prob_for_block


def _inputs(batch=4):
    return tf.random.stateless_normal([batch, 3, 5, 2], seed=[1, 2]) + 2.0


@pytest.mark.parametrize("training", [False, None])
def test_identity_at_inference(training):
    x = _inputs()
    np.testing.assert_array_equal(DropPath(0.5)(x, training=training), x)


def test_identity_in_training_when_keep_prob_is_one():
    x = _inputs()
    np.testing.assert_array_equal(DropPath(1.0)(x, training=True), x)


def test_training_drops_whole_samples_and_rescales():
    keep_prob = 0.75
    x = _inputs(batch=64)
    tf.random.set_seed(3)
    y = DropPath(keep_prob)(x, training=True).numpy()
    kept = np.all(np.isclose(y, x.numpy() / keep_prob), axis=(1, 2, 3))
    dropped = np.all(y == 0.0, axis=(1, 2, 3))
    # Every sample is either dropped whole or kept whole and scaled by 1/p.
    assert np.all(kept ^ dropped)
    assert kept.any() and dropped.any()


def test_training_expectation_equals_input():
    keep_prob = 0.8
    batch = 20000
    x = tf.ones([batch, 1, 1, 1])
    tf.random.set_seed(7)
    y = DropPath(keep_prob)(x, training=True).numpy().ravel()
    # Mean of Bernoulli(p) / p over N samples: std = sqrt((1 - p) / (p N)).
    std = np.sqrt((1.0 - keep_prob) / (keep_prob * batch))
    assert abs(y.mean() - 1.0) < 5 * std
    assert set(np.unique(y)) == {0.0, np.float32(1.0 / keep_prob)}


def test_symbolic_training_flag():
    layer = DropPath(0.5)
    x = _inputs(batch=32)

    @tf.function
    def run(training):
        return layer(x, training=training)

    np.testing.assert_array_equal(run(tf.constant(False)), x)
    y = run(tf.constant(True)).numpy()
    assert np.any(y == 0.0)


@pytest.mark.parametrize("keep_prob", [0.0, -0.1, 1.5])
def test_invalid_keep_prob(keep_prob):
    with pytest.raises(ValueError, match="keep_prob"):
        DropPath(keep_prob)


def test_get_config_round_trip():
    layer = DropPath(0.7, name="dp")
    config = layer.get_config()
    assert config["keep_prob"] == 0.7
    clone = DropPath.from_config(config)
    assert clone.keep_prob == 0.7 and clone.name == "dp"
    # Registered under the remax_tf package for (de)serialization.
    restored = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
    assert isinstance(restored, DropPath) and restored.keep_prob == 0.7


def test_schedule_constant():
    assert drop_path_keep_prob_for_block(0, 4, 0.8, "constant") == 0.8
    assert drop_path_keep_prob_for_block(3, 4, 0.8, "constant") == 0.8


def test_schedule_linear_matches_deeplab2_formula():
    # DeepLab2 get_drop_path_keep_prob: 1 - (1 - p) * stage / num_stages.
    assert drop_path_keep_prob_for_block(0, 4, 0.8, "linear") == 1.0
    assert drop_path_keep_prob_for_block(3, 4, 0.8, "linear") == pytest.approx(0.85)
    assert drop_path_keep_prob_for_block(4, 4, 0.8, "linear") == pytest.approx(0.8)
    # ConvNeXt's linspace(1, p, n) is the same formula over n - 1.
    expected = np.linspace(1.0, 0.3, 36)
    got = [drop_path_keep_prob_for_block(i, 35, 0.3, "linear") for i in range(36)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_schedule_errors():
    with pytest.raises(ValueError, match="schedule"):
        drop_path_keep_prob_for_block(0, 4, 0.8, "cosine")
    with pytest.raises(ValueError, match="block_index"):
        drop_path_keep_prob_for_block(5, 4, 0.8, "linear")
    with pytest.raises(ValueError, match="keep_prob"):
        drop_path_keep_prob_for_block(0, 4, 0.0, "constant")
