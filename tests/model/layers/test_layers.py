"""Layers of remax_tf.model.layers.

Each layer goes through the ``check_layer`` fixture (tests/model/conftest.py).
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

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

BN = 2  # gamma + beta per channel (trainable)
SPAN = 2 * 255 - 1  # relative-position table rows (DeepLab2 MAX_SPAN 255)


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


def test_conv_units(check_layer, random_tensor):
    x = random_tensor(2, 9, 9, 8)
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
        Conv1DBNAct(6, bn_gamma_initializer="zeros"),
        random_tensor(2, 7, 8),
        [2, 7, 6],
        48 + 12,
    )
    with pytest.raises(ValueError, match="use_bias"):
        Conv2DBNAct(4, 1, use_bias=True, use_bn=True)


def test_strided_conv_keeps_corner_alignment():
    # A 1x1 stride-2 conv of a 9x9 ramp must read rows/cols 0, 2, 4, 6, 8.
    layer = Conv2DBNAct(1, 1, strides=2, use_bn=False, kernel_initializer="ones")
    ramp = tf.reshape(tf.range(81, dtype=tf.float32), [1, 9, 9, 1])
    out = layer(ramp)[0, :, :, 0].numpy()
    np.testing.assert_array_equal(out, ramp.numpy()[0, ::2, ::2, 0])


def test_relative_positional_encoding(check_layer, random_tensor):
    layer = RelativePositionalEncoding(4)
    out = check_layer(layer, random_tensor(3, 6, 5), [6, 6, 4], SPAN * 4)
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(out[2, 3], table[254 + 1])


def test_axial_attention_1d_and_2d(check_layer, random_tensor):
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
        random_tensor(4, 7, 12),
        [4, 7, 16],
        one_d(12),
    )
    # The width axis reads the height axis' values (16 channels).
    layer = AxialAttention2D(8, strides=2, num_heads=heads)
    check_layer(layer, random_tensor(2, 9, 7, 12), [2, 5, 4, 16], one_d(12) + one_d(16))


def test_axial_attention_is_permutation_sensitive_through_positions(random_tensor):
    # Relative positions make the output depend on token order beyond a
    # permutation of the outputs (pure content attention would not).
    layer = AxialAttention(8, 8, num_heads=2)
    x = random_tensor(1, 6, 4)
    perm = [5, 3, 1, 0, 2, 4]
    out = layer(x).numpy()[0]
    out_perm = layer(tf.gather(x, perm, axis=1)).numpy()[0]
    assert not np.allclose(out[perm], out_perm, atol=1e-4)


def test_residual_blocks_and_groups(check_layer, random_tensor):
    x = random_tensor(2, 9, 9, 16)
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
        AxialBlock(f, activation="gelu"),
        random_tensor(2, 5, 5, 32),
        [2, 5, 5, 32],
        axial,
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


def test_resized_fuse_projects_resizes_and_sums(check_layer, random_tensor):
    low, skip = random_tensor(2, 3, 3, 24), random_tensor(2, 5, 5, 12)
    fuse = ResizedFuse(8)
    out = check_layer(fuse, [low, skip], [2, 5, 5, 8], 24 * 8 + 16 + 12 * 8 + 16)
    # Aligned corners: the output corners equal the projected inputs' corners.
    a = fuse._projections[0](tf.nn.gelu(low), training=False)
    b = fuse._projections[1](tf.nn.gelu(skip), training=False)
    np.testing.assert_allclose(out[:, 0, 0], a[:, 0, 0] + b[:, 0, 0], atol=1e-5)
    np.testing.assert_allclose(out[:, -1, -1], a[:, -1, -1] + b[:, -1, -1], atol=1e-5)
    # An input that already has num_channels is only resized.
    same = ResizedFuse(12)
    check_layer(same, [random_tensor(2, 3, 3, 12), skip], [2, 5, 5, 12], 0)


def test_aspp(check_layer, random_tensor):
    c_in, c = 6, 4
    params = c_in * c + 3 * 9 * c_in * c + c_in * c + 5 * c * c + 6 * c * BN
    check_layer(ASPP(c, (1, 2, 3)), random_tensor(2, 5, 5, c_in), [2, 5, 5, c], params)
    check_layer(
        ASPP(c, (), use_only_1x1_proj_conv=True),
        random_tensor(2, 5, 5, c_in),
        [2, 5, 5, c],
        c_in * c + c * BN,
    )
    with pytest.raises(ValueError, match="3 atrous rates"):
        ASPP(c, (1, 2))
