"""Tests of the MobileNetV3 pixel encoders (remax_tf.model.pixel_encoder.mobilenet_v3)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.pixel_encoder.mobilenet_v3 import hard_swish
from remax_tf.model.pixel_encoder.mobilenet_v3 import make_divisible

# Trainable parameters, measured here and equal to DeepLab2's MobileNetV3Small
# / MobileNetV3Large encoders. Howard et al. report 2.5M / 5.4M with the
# classifier (1x1 conv to 1024 / 1280 + FC to 1000: 1.62M / 2.51M more).
MNV3_SMALL_PARAMS = 927_008
MNV3_LARGE_PARAMS = 2_971_952
SMALL_ENDPOINTS_65 = [(33, 16), (17, 16), (9, 88), (5, 144), (3, 576)]
LARGE_ENDPOINTS_65 = [(33, 16), (17, 72), (9, 120), (5, 672), (3, 960)]


@pytest.fixture(scope="module")
def small():
    return build_pixel_encoder("kmax_mobilenet_v3_small")


@pytest.fixture(scope="module")
def large():
    return build_pixel_encoder("kmax_mobilenet_v3_large")


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_small_endpoints_and_params(small, images_65, assert_endpoints):
    outputs = small(images_65, training=False)
    assert_endpoints(outputs, SMALL_ENDPOINTS_65)
    for level in range(1, 6):
        assert outputs[f"res{level}"] is outputs[f"stage{level}"]
    assert _trainable(small) == MNV3_SMALL_PARAMS


def test_large_endpoints_and_params(large, images_65, assert_endpoints):
    outputs = large(images_65, training=False)
    assert_endpoints(outputs, LARGE_ENDPOINTS_65)
    assert _trainable(large) == MNV3_LARGE_PARAMS


def test_endpoints_are_expanded_depthwise_features(large):
    # DeepLab2 mobilenet.py: the endpoint of a bottleneck is its activated
    # depthwise output; at stride 32, the final 1x1 conv's output.
    for key, layer_name in [
        ("stage1", "block1_depthwise_act"),
        ("stage2", "block3_depthwise_act"),
        ("stage3", "block6_depthwise_act"),
        ("stage4", "block12_depthwise_act"),
        ("stage5", "block16_act"),
    ]:
        assert large.output[key] is large.get_layer(layer_name).output, key


def test_deterministic_inference(small, images_65):
    a = small(images_65, training=False)
    b = small(images_65, training=False)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_hard_swish():
    x = tf.constant([-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 5.0])
    expected = [0.0, 0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, 3.0, 5.0]
    np.testing.assert_allclose(hard_swish(x), expected, rtol=1e-6, atol=1e-7)


def test_make_divisible():
    # Expanded widths of Howard et al. Tables 1-2.
    assert make_divisible(16 * 72 / 16) == 72
    assert make_divisible(24 * 88 / 24) == 88
    assert make_divisible(80 * 2.5) == 200
    assert make_divisible(80 * 2.3) == 184
    assert make_divisible(96 * 6 * 0.25) == 144
    assert make_divisible(3) == 8


def test_drop_path_on_residual_blocks_and_norm_layer():
    def norm_layer(**kwargs):
        return tf_keras.layers.BatchNormalization(momentum=0.9, **kwargs)

    model = build_pixel_encoder(
        "kmax_mobilenet_v3_small",
        drop_path_keep_prob=0.5,
        drop_path_schedule="constant",
        norm_layer=norm_layer,
    )
    drop = [layer for layer in model.layers if isinstance(layer, DropPath)]
    # Residual blocks of -Small: 1 at stride 8, 3 at 16, 2 at 32 (stride-1 and
    # equal widths).
    assert len(drop) == 6 and all(layer.keep_prob == 0.5 for layer in drop)
    bns = [
        layer
        for layer in model.layers
        if isinstance(layer, tf_keras.layers.BatchNormalization)
    ]
    assert bns and all(bn.momentum == 0.9 for bn in bns)
    x = tf.random.stateless_uniform([8, 33, 33, 3], seed=[4, 2], minval=-1, maxval=1)
    outputs = model(x, training=True)
    assert outputs["stage5"].shape == (8, 2, 2, 576)
    assert np.all(np.isfinite(outputs["stage5"].numpy()))


def test_layers_are_tf_keras(small):
    assert all(isinstance(layer, tf_keras.layers.Layer) for layer in small.layers)


def test_model_config_round_trip(images_65):
    # hard_swish and DropPath are registered, so the functional model can be
    # rebuilt from its config.
    model = build_pixel_encoder("kmax_mobilenet_v3_small", drop_path_keep_prob=0.9)
    clone = tf_keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    a = model(images_65, training=False)
    b = clone(images_65, training=False)
    assert sorted(a) == sorted(b)
    np.testing.assert_allclose(a["stage5"], b["stage5"], rtol=1e-5, atol=1e-5)
