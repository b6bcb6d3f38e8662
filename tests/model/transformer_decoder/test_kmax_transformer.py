"""remax_tf.model.transformer_decoder: the kMaX layer and decoder.

Each layer goes through the ``check_layer`` fixture (tests/model/conftest.py).
"""

import numpy as np
import pytest

from remax_tf import common
from remax_tf.model.layers.activations import get_activation
from remax_tf.model.transformer_decoder.kmax_decoder import KMaXTransformerDecoder
from remax_tf.model.transformer_decoder.kmax_layer import KMaXTransformerLayer

BN = 2  # gamma + beta per channel (trainable)


def _kmax_layer_params(c_pixel, c, key, value, heads, ffn, head_params):
    """Trainable parameters of one kMaX layer (DeepLab2's layout)."""
    return (
        c * c
        + c * BN  # memory_conv1_bn_act
        + c_pixel * c
        + c * BN  # pixel_conv1_bn_act
        + c * (2 * key + value)
        + (2 * key + value) * BN  # memory_qkv_conv_bn
        + c * value
        + value * BN  # pixel_v_conv_bn
        + heads * BN  # similarity BN, per head
        + value * BN  # retrieved-value BN, per head and channel
        + head_params  # auxiliary prediction head
        + value * BN  # k-means retrieved-value BN
        + 2 * (value * c + c * BN)  # kmeans_memory_conv3_bn, memory_conv3_bn
        + c * ffn
        + ffn * BN
        + ffn * c
        + c * BN  # FFN
    )


def test_kmax_transformer_layer(check_layer, random_tensor):
    heads, c, c_pixel, slots, classes = 2, 8, 6, 5, 4
    head_config = dict(
        num_classes_with_void=classes, pixel_head_channels=4, embedding_channels=3
    )
    layer = KMaXTransformerLayer(
        bottleneck_channels=c,
        key_depth=4,
        value_depth=c,
        num_heads=heads,
        ffn_channels=10,
        prediction_head_config=head_config,
    )
    head = (
        25 * c
        + c * BN
        + c * 4
        + 4 * BN
        + 4 * 3
        + 3
        + c * 3
        + 3 * BN
        + c * classes
        + classes
        + 3 * BN
        + BN
    )
    expected = _kmax_layer_params(c_pixel, c, 4, c, heads, 10, head)
    centres, prediction = check_layer(
        layer,
        (random_tensor(2, 3, 4, c_pixel), random_tensor(2, slots, c)),
        [2, slots, c],
        expected,
    )
    assert prediction[common.PRED_KEY_FEATURE_KEY].shape == [2, 3, 4, c]
    assert prediction[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape == [2, 3, 4, slots]
    with pytest.raises(ValueError, match="num_classes_with_void"):
        KMaXTransformerLayer(prediction_head_config={})


def test_kmax_layer_centres_move_to_assigned_pixel_means(random_tensor):
    # With the zero-initialised residual BNs (gamma 0) a fresh layer leaves the
    # centres unchanged up to the activation; after setting the k-means
    # branch's gamma to 1 the update depends only on the assigned pixels.
    head_config = dict(num_classes_with_void=3, pixel_head_channels=4)
    layer = KMaXTransformerLayer(
        bottleneck_channels=8,
        key_depth=4,
        value_depth=8,
        num_heads=2,
        ffn_channels=8,
        prediction_head_config=head_config,
    )
    pixels, centres = random_tensor(1, 2, 3, 5), random_tensor(1, 4, 8, seed=1)
    out, _ = layer((pixels, centres), training=False)
    gelu = get_activation("gelu")
    np.testing.assert_allclose(out, gelu(gelu(centres)), atol=1e-5)


def test_kmax_transformer_decoder_counts_layers(
    check_layer, random_tensor, parameter_count
):
    head_config = dict(
        num_classes_with_void=4, pixel_head_channels=4, embedding_channels=3
    )
    decoder = KMaXTransformerDecoder(
        6,
        num_blocks=(1, 2),
        strides=(16, 8),
        channels=8,
        num_heads=2,
        ffn_channels=10,
        prediction_head_config=head_config,
    )
    features = [random_tensor(2, 3, 3, 12), random_tensor(2, 5, 5, 6)]
    out = decoder(features, training=False)
    assert decoder.num_layers == 3
    assert len(out["auxiliary_predictions"]) == 3
    keys = [
        p[common.PRED_KEY_FEATURE_KEY].shape[1] for p in out["auxiliary_predictions"]
    ]
    assert keys == [3, 5, 5]
    assert out["transformer_mask_feature"].shape == [2, 6, 8]
    layers = [layer for stage in decoder._layers_per_stage for layer in stage]
    expected = (
        6 * 8 + 2 * (8 * 8 + 8 * BN) + sum(parameter_count(layer) for layer in layers)
    )
    check_layer(decoder, features, None, expected)
