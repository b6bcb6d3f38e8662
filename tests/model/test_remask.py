"""ReMask (ReMaX Eq. 1-2): values, inference identity, gradients, config."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.model.remask import ReMask
from remax_tf.model.remask import relax_mask_logits


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    mask = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    semantic = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
    classes = rng.normal(size=(2, 5, 7)).astype(np.float32)  # NC = 6, void last
    return mask, semantic, classes


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_training_output_is_eq_1_and_2(inputs, activation):
    mask, semantic, classes = inputs
    act = _sigmoid if activation == "sigmoid" else _softmax
    # Eq. (1): act(m_sem) act(p[:, :NC])^T; Eq. (2): m + that * m.
    semantic_in_slots = np.einsum(
        "bhwc,bqc->bhwq", act(semantic), act(classes[..., :6])
    )
    expected = mask + semantic_in_slots * mask
    layer = ReMask(activation=activation)
    got = layer([tf.constant(x) for x in inputs], training=True)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_flat_pixels_give_the_same_result(inputs):
    mask, semantic, classes = inputs
    layer = ReMask()
    spatial = layer([tf.constant(x) for x in inputs], training=True).numpy()
    flat = layer(
        [
            tf.constant(mask.reshape(2, 12, 5)),
            tf.constant(semantic.reshape(2, 12, 6)),
            tf.constant(classes),
        ],
        training=True,
    ).numpy()
    np.testing.assert_allclose(flat.reshape(spatial.shape), spatial, rtol=1e-6)


@pytest.mark.parametrize("training", [None, False, tf.constant(False)])
def test_identity_at_inference(inputs, training):
    mask = tf.constant(inputs[0])
    got = ReMask()(
        [mask, tf.constant(inputs[1]), tf.constant(inputs[2])], training=training
    )
    np.testing.assert_array_equal(got.numpy(), inputs[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(
            activation="softmax",
            stop_gradient=False,
            class_stop_gradient=False,
            semantic_input="probabilities",
        ),
    ],
    ids=["default", "other"],
)
def test_shared_layer_checks(inputs, check_layer, kwargs):
    # No weights: the config round trip and the identity at inference (the
    # training step of check_layer needs trainable variables; test_gradients
    # covers the gradients).
    layer = ReMask(**kwargs)
    out = check_layer(layer, [tf.constant(x) for x in inputs], inputs[0].shape, 0)
    np.testing.assert_array_equal(out.numpy(), inputs[0])
    assert not layer.weights


def test_tensor_training_flag_relaxes(inputs):
    tensors = [tf.constant(x) for x in inputs]
    got = ReMask()(tensors, training=tf.constant(True))
    np.testing.assert_allclose(got.numpy(), ReMask()(tensors, training=True).numpy())


def _norm(gradient):
    return 0.0 if gradient is None else float(tf.norm(gradient))


@pytest.mark.parametrize("stop_gradient", [True, False])
@pytest.mark.parametrize("class_stop_gradient", [True, False])
def test_gradients(inputs, stop_gradient, class_stop_gradient):
    mask, semantic, classes = (tf.Variable(x) for x in inputs)
    layer = ReMask(stop_gradient=stop_gradient, class_stop_gradient=class_stop_gradient)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer([mask, semantic, classes], training=True)))
    grad_mask, grad_semantic, grad_classes = tape.gradient(
        loss, [mask, semantic, classes]
    )
    assert float(tf.norm(grad_mask)) > 0.0
    if class_stop_gradient:
        # Default (public ReMaX code): no gradient into p through Eq. (1).
        assert _norm(grad_classes) == 0.0
    else:
        # Gradient reaches p through Eq. (1), except the void logit.
        assert float(tf.norm(grad_classes[..., :-1])) > 0.0
        assert float(tf.norm(grad_classes[..., -1])) == 0.0
    if stop_gradient:
        assert grad_semantic is None or float(tf.norm(grad_semantic)) == 0.0
    else:
        assert float(tf.norm(grad_semantic)) > 0.0


def test_mask_gradient_is_one_plus_m_sem_hat():
    # Zero logits: every sigmoid is 1/2, so with NC = 6 classes Eq. (1) gives
    # m_sem_hat = 6 * 1/4 = 1.5 for every slot, unnormalised (paper and public
    # code sum NC products). Eq. (2): m_hat = 2.5 m, and with p and m_sem
    # detached d m_hat / d m = 2.5 exactly.
    mask = tf.Variable([[[2.0, -1.0]]])  # [B=1, P=1, NQ=2]
    semantic = tf.zeros([1, 1, 6])
    classes = tf.Variable(tf.zeros([1, 2, 7]))
    with tf.GradientTape() as tape:
        relaxed = ReMask()([mask, semantic, classes], training=True)
    np.testing.assert_allclose(relaxed.numpy(), [[[5.0, -2.5]]], rtol=1e-6)
    grad_mask, grad_classes = tape.gradient(relaxed, [mask, classes])
    np.testing.assert_allclose(grad_mask.numpy(), [[[2.5, 2.5]]], rtol=1e-6)
    assert _norm(grad_classes) == 0.0


def test_semantic_probabilities_can_be_given_directly():
    # The ground-truth ablation passes masks in place of act(m_sem).
    mask = tf.constant([[[2.0, -1.0]]])  # [B=1, P=1, NQ=2]
    semantic = tf.constant([[[1.0, 0.0]]])  # the pixel is class 0
    class_probs = tf.constant([[[0.5, 0.5], [0.25, 0.0]]])
    got = relax_mask_logits(mask, semantic, class_probs)
    # slot 0: 2 + 0.5 * 2 = 3; slot 1: -1 + 0.25 * -1 = -1.25
    np.testing.assert_allclose(got.numpy(), [[[3.0, -1.25]]])


def test_config_round_trip_and_errors():
    layer = ReMask(
        activation="softmax",
        stop_gradient=False,
        class_stop_gradient=False,
        name="remask",
    )
    config = layer.get_config()
    assert config["activation"] == "softmax" and config["stop_gradient"] is False
    assert config["class_stop_gradient"] is False
    clone = ReMask.from_config(config)
    assert clone.activation == "softmax" and not clone.stop_gradient
    assert not clone.class_stop_gradient
    assert ReMask().class_stop_gradient
    restored = tf_keras.utils.deserialize_keras_object(
        tf_keras.utils.serialize_keras_object(layer)
    )
    assert isinstance(restored, ReMask)
    assert not layer.weights
    with pytest.raises(ValueError, match="relu"):
        ReMask(activation="relu")
    with pytest.raises(ValueError, match="NC \\+ 1"):
        ReMask()(
            [tf.zeros((1, 2, 2, 3)), tf.zeros((1, 2, 2, 4)), tf.zeros((1, 3, 4))],
            training=True,
        )
