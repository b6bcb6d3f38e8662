"""Heads of remax_tf.model.heads.

Each layer goes through the ``check_layer`` fixture (tests/model/conftest.py).
"""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.model.heads.auxiliary_semantic_head import AuxiliarySemanticHead
from remax_tf.model.heads.conv_head import ConvHead
from remax_tf.model.heads.kmax_prediction_head import KMaXPredictionHead
from remax_tf.model.heads.kmax_prediction_head import void_prior_bias
from remax_tf.model.heads.remax_semantic_head import ReMaXSemanticHead
from remax_tf.model.heads.semantic_decoder import SemanticDecoder

BN = 2  # gamma + beta per channel (trainable)


def test_heads(check_layer, random_tensor):
    x = random_tensor(2, 5, 5, 6)
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


def test_prediction_head_outputs_and_void_prior(check_layer, random_tensor):
    num_classes, slots, d = 5, 4, 6
    head = KMaXPredictionHead(num_classes, pixel_head_channels=8, embedding_channels=3)
    inputs = (
        random_tensor(2, 5, 5, 10),
        random_tensor(2, slots, d),
        random_tensor(2, slots, d),
    )
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


def test_semantic_decoder_and_auxiliary_head(check_layer, random_tensor):
    endpoints = {
        "stage5": random_tensor(2, 3, 3, 16),
        "res3": random_tensor(2, 9, 9, 8),
        "res2": random_tensor(2, 17, 17, 4),
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
