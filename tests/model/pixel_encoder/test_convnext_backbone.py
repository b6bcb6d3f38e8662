"""Tests of the kMaX ConvNeXt pixel encoders (remax_tf.model.pixel_encoder.convnext).

Only ConvNeXt-T is built (the others take seconds each to initialise); the
parameter counts of S / B / L come from a closed form checked on T.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.layers.layer_scale import LayerScale
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.pixel_encoder.convnext import CONVNEXT_VARIANTS

# Trainable parameters without head, measured here and equal to DeepLab2's
# ConvNeXt and to timm's convnext_* minus the head (final norm + classifier):
# T 28.59M - 0.77M, S 50.22M - 0.77M, B 88.59M - 1.03M, L 197.77M - 1.54M.
CONVNEXT_PARAMS = {
    "tiny": 27_818_592,
    "small": 49_453_152,
    "base": 87_564_416,
    "large": 196_227_264,
}
KEEP_PROB = 0.7


def _closed_form_params(depths, dims):
    """Stem, downsampling layers and blocks, counted from the architecture."""
    c0 = dims[0]
    total = 4 * 4 * 3 * c0 + c0 + 2 * c0  # stem conv (bias) + LayerNorm
    for c_in, c_out in zip(dims[:-1], dims[1:]):
        total += 2 * c_in + 2 * 2 * c_in * c_out + c_out  # LayerNorm + 2x2 conv
    for depth, c in zip(depths, dims):
        # 7x7 depthwise (bias) + LN + Dense 4C + Dense C + layer scale.
        per_block = 49 * c + c + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c
        total += depth * per_block
    return total


@pytest.fixture(scope="module")
def tiny():
    # Default schedule: DeepLab2's per-block linear decay.
    return build_pixel_encoder("kmax_convnext_tiny", drop_path_keep_prob=KEEP_PROB)


@pytest.fixture(scope="module")
def outputs(tiny, images_65):
    return tiny(images_65, training=False)


def test_endpoint_shapes_at_65(outputs, assert_endpoints):
    # stage1 is the stride-4 stem output, as in DeepLab2's ConvNeXt.
    assert_endpoints(outputs, [(17, 96), (17, 96), (9, 192), (5, 384), (3, 768)])


def test_res_is_gelu_of_stage(outputs):
    for level in range(1, 6):
        np.testing.assert_allclose(
            outputs[f"res{level}"],
            tf.nn.gelu(outputs[f"stage{level}"], approximate=False),
            rtol=1e-6,
            atol=1e-6,
        )


def test_parameter_count_tiny(tiny):
    trainable = sum(int(np.prod(v.shape)) for v in tiny.trainable_variables)
    assert trainable == CONVNEXT_PARAMS["tiny"]
    assert not tiny.non_trainable_variables


@pytest.mark.parametrize("variant", sorted(CONVNEXT_PARAMS))
def test_parameter_counts_closed_form(variant):
    depths, dims = CONVNEXT_VARIANTS[variant]
    assert _closed_form_params(depths, dims) == CONVNEXT_PARAMS[variant]


def test_deterministic_inference(tiny, images_65, outputs):
    again = tiny(images_65, training=False)
    for key in outputs:
        np.testing.assert_array_equal(outputs[key], again[key])


def test_drop_path_is_linear_over_all_blocks(tiny):
    keep = [layer.keep_prob for layer in tiny.layers if isinstance(layer, DropPath)]
    # DeepLab2: tf.linspace(1.0, p, 18); the first block (keep 1.0) has none.
    np.testing.assert_allclose(keep, np.linspace(1.0, KEEP_PROB, 18)[1:], rtol=1e-6)


def test_layer_norm_and_layer_scale_settings(tiny):
    norms = [
        layer
        for layer in tiny.layers
        if isinstance(layer, tf_keras.layers.LayerNormalization)
    ]
    assert len(norms) == 1 + 3 + 18  # stem, 3 downsamplings, one per block
    assert all(n.epsilon == 1e-6 for n in norms)
    scales = [layer for layer in tiny.layers if isinstance(layer, LayerScale)]
    assert len(scales) == 18
    np.testing.assert_allclose(scales[0].gamma.numpy(), 1e-6)
    assert not any(
        isinstance(layer, tf_keras.layers.BatchNormalization) for layer in tiny.layers
    )


def test_layer_scale_layer(check_layer):
    layer = LayerScale(0.5, name="ls")
    x = tf.ones([2, 3, 4])
    # Config round trip, (de)serialization and a training step (conftest.py).
    out = check_layer(layer, x, [2, 3, 4], 4)
    np.testing.assert_allclose(out, 0.5 * np.ones([2, 3, 4]))
    clone = LayerScale.from_config(layer.get_config())
    assert clone.init_value == 0.5 and clone.name == "ls"


def test_training_call_applies_drop_path(tiny, images_65):
    tf.random.set_seed(0)
    a = tiny(images_65, training=True)["stage5"]
    b = tiny(images_65, training=True)["stage5"]
    assert a.shape == (2, 3, 3, 768)
    # LayerScale 1e-6 keeps branches tiny, but random drops still differ.
    assert not np.array_equal(a.numpy(), b.numpy())
