"""Semantic cross-entropy: top-k and the non-zero normalisation."""

import math

import numpy as np
import tensorflow as tf

from remax_tf.losses.semantic import remax_semantic_loss
from remax_tf.losses.semantic import semantic_cross_entropy
from remax_tf.losses.targets import build_ground_truth


def test_top_k_and_ignore_by_hand():
    # Two classes, four pixels, logits (0, 0): CE = ln 2 each; label 9 ignored.
    logits = tf.zeros((1, 4, 2))
    labels = tf.constant([[0, 1, 9, 0]])
    weights = tf.constant([[1.0, 3.0, 1.0, 1.0]])
    full = semantic_cross_entropy(logits, labels, weights, ignore_label=9)
    # (1 + 3 + 1) ln 2 / 3 non-zero pixels.
    np.testing.assert_allclose(full.numpy(), [5 * math.log(2) / 3], rtol=1e-6)
    half = semantic_cross_entropy(logits, labels, weights, 9, top_k_percent=0.5)
    # The 2 largest weighted losses: 3 ln 2 and ln 2.
    np.testing.assert_allclose(half.numpy(), [2 * math.log(2)], rtol=1e-6)


def test_remax_semantic_loss_uses_model_order(layout, make_gt):
    gt = build_ground_truth(make_gt(), (5, 9), layout)
    perfect = 30.0 * (2.0 * gt.pixel_class_one_hot - 1.0)
    assert float(tf.reduce_max(remax_semantic_loss(perfect, gt))) < 1e-6
    shuffled = tf.reverse(perfect, axis=[-1])
    assert float(tf.reduce_min(remax_semantic_loss(shuffled, gt))) > 10.0
