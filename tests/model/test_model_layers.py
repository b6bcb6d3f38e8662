"""Layers of remax_tf.model: shapes, parameter counts, config round trips.

Every layer goes through the ``check_layer`` fixture (tests/model/conftest.py):
build and call it, compare the output shape and the trainable-parameter count
with values derived by hand, check that ``get_config`` holds exactly the
constructor arguments, survives JSON, and rebuilds a layer that computes the
same function, then train the rebuilt layer for two SGD steps: every trainable
variable gets a finite, non-zero gradient and the outputs move.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.model.heads.auxiliary_semantic_head import AuxiliarySemanticHead
from remax_tf.model.heads.conv_head import ConvHead
from remax_tf.model.heads.kmax_prediction_head import KMaXPredictionHead
from remax_tf.model.heads.kmax_prediction_head import void_prior_bias
from remax_tf.model.heads.remax_semantic_head import ReMaXSemanticHead
from remax_tf.model.heads.semantic_decoder import SemanticDecoder
from remax_tf.model.layers.activations import get_activation
from remax_tf.model.layers.aspp import ASPP
from remax_tf.model.layers.axial_attention import AxialAttention
from remax_tf.model.layers.axial_attention import AxialAttention2D
from remax_tf.model.layers.batch_norm import bn_config_from_norm_layer
from remax_tf.model.layers.batch_norm import norm_layer_factory
from remax_tf.model.layers.block_group import BlockGroup
from remax_tf.model.layers.conv_bn_act import Conv1DBNAct
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct
from remax_tf.model.layers.conv_bn_act import DepthwiseConv2DBNAct
from remax_tf.model.layers.conv_bn_act import SeparableConv2DBNAct
from remax_tf.model.layers.positional_encodings import RelativePositionalEncoding
from remax_tf.model.layers.positional_encodings import relative_distance_indices
from remax_tf.model.layers.residual_blocks import AxialBlock
from remax_tf.model.layers.residual_blocks import BottleneckBlock
from remax_tf.model.layers.resized_fuse import ResizedFuse
from remax_tf.model.pixel_decoder.kmax_pixel_decoder import KMaXPixelDecoder
from remax_tf.model.pixel_encoder.axial_resnet import InceptionStem
from remax_tf.model.transformer_decoder.kmax_decoder import KMaXTransformerDecoder
from remax_tf.model.transformer_decoder.kmax_layer import KMaXTransformerLayer

BN = 2  # gamma + beta per channel (trainable)
SPAN = 2 * 255 - 1  # relative-position table rows (DeepLab2 MAX_SPAN 255)


def _rand(*shape, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _params(layer):
    return int(sum(np.prod(v.shape) for v in layer.trainable_weights))


def test_relative_distance_indices_match_definition_and_clip():
    idx = relative_distance_indices(4, max_span=255)
    # key - query + 254: the diagonal is 254, one step right is 255.
    assert idx[0, 0] == 254 and idx[0, 1] == 255 and idx[3, 0] == 251
    for q in range(4):
        for k in range(4):
            assert idx[q, k] == k - q + 254
    long = relative_distance_indices(300, max_span=255)
    assert long.min() == 0 and long.max() == 2 * 255 - 2


def test_activation_registry_names_the_known_ones():
    np.testing.assert_allclose(get_activation("gelu")(tf.constant([1.0])), [0.8413447])
    with pytest.raises(ValueError, match="known: .*gelu"):
        get_activation("mish")


def test_bn_config_and_norm_layer_factory_round_trip():
    config = {"momentum": 0.9, "epsilon": 1e-5, "synchronized": True}
    assert bn_config_from_norm_layer(norm_layer_factory(config)) == config
    layer = norm_layer_factory(config)(name="bn")
    assert layer.momentum == 0.9 and layer.synchronized
    with pytest.raises(ValueError, match="norm_layer"):
        bn_config_from_norm_layer(tf_keras.layers.LayerNormalization)


def test_conv_units(check_layer):
    x = _rand(2, 9, 9, 8)
    # 3x3 stride 2 with DeepLab2 padding: 9 -> 5 (ceil), corners aligned.
    check_layer(
        Conv2DBNAct(16, 3, strides=2, activation="gelu"),
        x,
        [2, 5, 5, 16],
        9 * 8 * 16 + 16 * BN,
    )
    check_layer(
        Conv2DBNAct(4, 1, use_bn=False, use_bias=True), x, [2, 9, 9, 4], 8 * 4 + 4
    )
    check_layer(
        DepthwiseConv2DBNAct(5, activation="relu"), x, [2, 9, 9, 8], 25 * 8 + 8 * BN
    )
    check_layer(
        SeparableConv2DBNAct(6, 5, activation="gelu"),
        x,
        [2, 9, 9, 6],
        25 * 8 + 8 * BN + 8 * 6 + 6 * BN,
    )
    check_layer(
        Conv1DBNAct(6, bn_gamma_initializer="zeros"), _rand(2, 7, 8), [2, 7, 6], 48 + 12
    )
    with pytest.raises(ValueError, match="use_bias"):
        Conv2DBNAct(4, 1, use_bias=True, use_bn=True)


def test_strided_conv_keeps_corner_alignment():
    # A 1x1 stride-2 conv of a 9x9 ramp must read rows/cols 0, 2, 4, 6, 8.
    layer = Conv2DBNAct(1, 1, strides=2, use_bn=False, kernel_initializer="ones")
    ramp = tf.reshape(tf.range(81, dtype=tf.float32), [1, 9, 9, 1])
    out = layer(ramp)[0, :, :, 0].numpy()
    np.testing.assert_array_equal(out, ramp.numpy()[0, ::2, ::2, 0])


def test_relative_positional_encoding(check_layer):
    layer = RelativePositionalEncoding(4)
    out = check_layer(layer, _rand(3, 6, 5), [6, 6, 4], SPAN * 4)
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(out[2, 3], table[254 + 1])


def test_axial_attention_1d_and_2d(check_layer):
    # qkv kernel C x (2K + V), BN on qkv, BN on 3 similarity terms per head,
    # BN on 2 retrieved terms per head and channel, 3 relative tables.
    heads, keys, values = 2, 8, 16

    def one_d(channels):
        return (
            channels * (2 * keys + values)
            + (2 * keys + values) * BN
            + 3 * heads * BN
            + 2 * values * BN
            + SPAN * (2 * keys // heads + values // heads)
        )

    check_layer(
        AxialAttention(keys, values, num_heads=heads),
        _rand(4, 7, 12),
        [4, 7, 16],
        one_d(12),
    )
    # The width axis reads the height axis' values (16 channels).
    layer = AxialAttention2D(8, strides=2, num_heads=heads)
    check_layer(layer, _rand(2, 9, 7, 12), [2, 5, 4, 16], one_d(12) + one_d(16))


def test_axial_attention_is_permutation_sensitive_through_positions():
    # Relative positions make the output depend on token order beyond a
    # permutation of the outputs (pure content attention would not).
    layer = AxialAttention(8, 8, num_heads=2)
    x = _rand(1, 6, 4)
    perm = [5, 3, 1, 0, 2, 4]
    out = layer(x).numpy()[0]
    out_perm = layer(tf.gather(x, perm, axis=1)).numpy()[0]
    assert not np.allclose(out[perm], out_perm, atol=1e-4)


def test_residual_blocks_and_groups(check_layer):
    x = _rand(2, 9, 9, 16)
    f = 8
    bottleneck = (
        16 * f
        + f * BN
        + 9 * f * f
        + f * BN
        + f * 4 * f
        + 4 * f * BN
        + 16 * 4 * f
        + 4 * f * BN  # projection shortcut 16 -> 32
    )
    block = BottleneckBlock(f, strides=2, atrous_rate=1, activation="relu")
    check_layer(block, x, [2, 5, 5, 32], bottleneck)
    # Zero-initialised last BN: a fresh block is shortcut(relu(x)).
    shortcut = block._shortcut(tf.nn.relu(x), training=False)
    np.testing.assert_allclose(block(x, training=False), shortcut, atol=1e-6)

    heads = 8  # AxialAttention2D default
    axial_attention = 2 * (
        2 * f * (2 * f + 2 * f)
        + 4 * f * BN
        + 3 * heads * BN
        + 2 * 2 * f * BN
        + SPAN * (2 * (f // heads) + 2 * f // heads)
    )
    axial = (
        32 * 2 * f + 2 * f * BN + axial_attention + 2 * f * 4 * f + 4 * f * BN
    )  # input already 4f = 32 channels: no shortcut
    check_layer(
        AxialBlock(f, activation="gelu"), _rand(2, 5, 5, 32), [2, 5, 5, 32], axial
    )
    group = BlockGroup(
        ["bottleneck", "axial"],
        f,
        2,
        strides=2,
        activation="gelu",
        drop_path_keep_probs=[1.0, 0.5],
    )
    check_layer(group, x, [2, 5, 5, 32], bottleneck + axial)
    # Drop path is the identity at inference.
    np.testing.assert_array_equal(group(x, training=False), group(x, training=False))


def test_resized_fuse_projects_resizes_and_sums(check_layer):
    low, skip = _rand(2, 3, 3, 24), _rand(2, 5, 5, 12)
    fuse = ResizedFuse(8)
    out = check_layer(fuse, [low, skip], [2, 5, 5, 8], 24 * 8 + 16 + 12 * 8 + 16)
    # Aligned corners: the output corners equal the projected inputs' corners.
    a = fuse._projections[0](tf.nn.gelu(low), training=False)
    b = fuse._projections[1](tf.nn.gelu(skip), training=False)
    np.testing.assert_allclose(out[:, 0, 0], a[:, 0, 0] + b[:, 0, 0], atol=1e-5)
    np.testing.assert_allclose(out[:, -1, -1], a[:, -1, -1] + b[:, -1, -1], atol=1e-5)
    # An input that already has num_channels is only resized.
    same = ResizedFuse(12)
    check_layer(same, [_rand(2, 3, 3, 12), skip], [2, 5, 5, 12], 0)


def test_aspp(check_layer):
    c_in, c = 6, 4
    params = c_in * c + 3 * 9 * c_in * c + c_in * c + 5 * c * c + 6 * c * BN
    check_layer(ASPP(c, (1, 2, 3)), _rand(2, 5, 5, c_in), [2, 5, 5, c], params)
    check_layer(
        ASPP(c, (), use_only_1x1_proj_conv=True),
        _rand(2, 5, 5, c_in),
        [2, 5, 5, c],
        c_in * c + c * BN,
    )
    with pytest.raises(ValueError, match="3 atrous rates"):
        ASPP(c, (1, 2))


def test_heads(check_layer):
    x = _rand(2, 5, 5, 6)
    sep_head = 25 * 6 + 6 * BN + 6 * 8 + 8 * BN + 8 * 3 + 3
    check_layer(ConvHead(8, 3), x, [2, 5, 5, 3], sep_head)
    check_layer(
        ConvHead(8, 3, conv_type="standard_conv"),
        x,
        [2, 5, 5, 3],
        25 * 6 * 8 + 8 * BN + 8 * 3 + 3,
    )
    remax_aspp = 6 * 4 + 3 * 9 * 6 * 4 + 6 * 4 + 5 * 4 * 4 + 6 * 4 * BN
    check_layer(
        ReMaXSemanticHead(7, channels=4, atrous_rates=(1, 2, 3)),
        x,
        [2, 5, 5, 7],
        remax_aspp + 4 * 7 + 7,
    )


def test_prediction_head_outputs_and_void_prior(check_layer):
    num_classes, slots, d = 5, 4, 6
    head = KMaXPredictionHead(num_classes, pixel_head_channels=8, embedding_channels=3)
    inputs = (_rand(2, 5, 5, 10), _rand(2, slots, d), _rand(2, slots, d))
    expected = (
        25 * 10
        + 10 * BN
        + 10 * 8
        + 8 * BN
        + 8 * 3
        + 3  # pixel-space head
        + d * 3
        + 3 * BN  # mask head
        + d * num_classes
        + num_classes  # class head
        + 3 * BN
        + 1 * BN  # feature BN, mask-logit BN
    )
    out = check_layer(head, inputs, None, expected)
    assert out[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape == [2, 5, 5, slots]
    assert out[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY].shape == [
        2,
        slots,
        num_classes,
    ]
    norms = tf.norm(out[common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    # softmax(void) = 0.9 when the learned logits are all zero.
    bias = void_prior_bias(num_classes, 0.9)
    np.testing.assert_allclose(tf.nn.softmax(bias)[-1], 0.9, atol=1e-6)


def test_semantic_decoder_and_auxiliary_head(check_layer):
    endpoints = {
        "stage5": _rand(2, 3, 3, 16),
        "res3": _rand(2, 9, 9, 8),
        "res2": _rand(2, 17, 17, 4),
    }
    decoder = SemanticDecoder(
        [4, 2], aspp_channels=4, atrous_rates=(1, 2, 3), decoder_channels=6
    )
    aspp = 16 * 4 + 3 * 9 * 16 * 4 + 16 * 4 + 5 * 4 * 4 + 6 * 4 * BN
    fusion1 = 8 * 4 + 4 * BN + 25 * 8 + 8 * BN + 8 * 6 + 6 * BN
    fusion2 = 4 * 2 + 2 * BN + 25 * 8 + 8 * BN + 8 * 6 + 6 * BN
    check_layer(
        decoder,
        (endpoints["stage5"], [endpoints["res3"], endpoints["res2"]]),
        [2, 17, 17, 6],
        aspp + fusion1 + fusion2,
    )
    head = AuxiliarySemanticHead(
        5,
        low_level_channels_project=(4, 2),
        head_channels=3,
        decoder_config=dict(
            aspp_channels=4, atrous_rates=[1, 2, 3], decoder_channels=6
        ),
    )
    head_params = 25 * 6 + 6 * BN + 6 * 3 + 3 * BN + 3 * 5 + 5
    check_layer(head, endpoints, [2, 17, 17, 5], aspp + fusion1 + fusion2 + head_params)
    # Without its decoder (DeepLab2's Cityscapes setting) it stays at stride 32.
    no_decoder = AuxiliarySemanticHead(5, use_decoder=False, head_channels=3)
    check_layer(
        no_decoder,
        endpoints,
        [2, 3, 3, 5],
        25 * 16 + 16 * BN + 16 * 3 + 3 * BN + 15 + 5,
    )
    with pytest.raises(KeyError, match="res2"):
        no_decoder({"stage5": endpoints["stage5"], "res3": endpoints["res3"]})


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


def test_kmax_transformer_layer(check_layer):
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
        layer, (_rand(2, 3, 4, c_pixel), _rand(2, slots, c)), [2, slots, c], expected
    )
    assert prediction[common.PRED_KEY_FEATURE_KEY].shape == [2, 3, 4, c]
    assert prediction[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape == [2, 3, 4, slots]
    with pytest.raises(ValueError, match="num_classes_with_void"):
        KMaXTransformerLayer(prediction_head_config={})


def test_kmax_layer_centres_move_to_assigned_pixel_means():
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
    pixels, centres = _rand(1, 2, 3, 5), _rand(1, 4, 8, seed=1)
    out, _ = layer((pixels, centres), training=False)
    gelu = get_activation("gelu")
    np.testing.assert_allclose(out, gelu(gelu(centres)), atol=1e-5)


def test_kmax_transformer_decoder_counts_layers(check_layer):
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
    features = [_rand(2, 3, 3, 12), _rand(2, 5, 5, 6)]
    out = decoder(features, training=False)
    assert decoder.num_layers == 3
    assert len(out["auxiliary_predictions"]) == 3
    keys = [
        p[common.PRED_KEY_FEATURE_KEY].shape[1] for p in out["auxiliary_predictions"]
    ]
    assert keys == [3, 5, 5]
    assert out["transformer_mask_feature"].shape == [2, 6, 8]
    layers = [layer for stage in decoder._layers_per_stage for layer in stage]
    expected = 6 * 8 + 2 * (8 * 8 + 8 * BN) + sum(_params(layer) for layer in layers)
    check_layer(decoder, features, None, expected)


def test_kmax_pixel_decoder_tiny(check_layer):
    endpoints = {
        "stage1": _rand(1, 33, 33, 4),
        "stage2": _rand(1, 17, 17, 8),
        "stage3": _rand(1, 9, 9, 12),
        "stage4": _rand(1, 5, 5, 16),
        "stage5": _rand(1, 3, 3, 24),
    }
    decoder = KMaXPixelDecoder(
        (8, 8, 4, 2, 2),
        (1, 1, 1, 1, 1),
        ("axial", "axial", "bottleneck", "bottleneck", "bottleneck"),
    )
    outputs = decoder(endpoints, training=False)
    assert [o.shape.as_list() for o in outputs] == [
        [1, 3, 3, 32],
        [1, 5, 5, 32],
        [1, 9, 9, 16],
        [1, 17, 17, 8],
        [1, 33, 33, 8],
    ]
    assert decoder.output_strides == [32, 16, 8, 4, 2]
    # DeepLab2 dilates the decoder's 3x3 convolutions by 2.
    assert decoder._stages[2]._blocks[0]._conv2_bn_act.atrous_rate == 2
    check_layer(decoder, endpoints, [1, 3, 3, 32], _params(decoder))
    with pytest.raises(KeyError, match="stage1"):
        decoder({k: v for k, v in endpoints.items() if k != "stage1"})


def test_inception_stem(check_layer):
    params = 27 * 4 + 4 * BN + 36 * 4 + 4 * BN + 36 * 8 + 8 * BN
    check_layer(InceptionStem((4, 4, 8)), _rand(1, 9, 9, 3), [1, 5, 5, 8], params)
