"""Bipartite matching of predicted mask slots to ground-truth masks (kMaX).

DeepLab2 (model/loss/max_deeplab_loss.py, ``MaXDeepLabLoss.call``) matches
once, on the final prediction, with the PQ-style similarity
``dice(mask) x prob(class)``, and reuses that matching (and the matched dice
and class probabilities, which weight the PQ-style terms) for every auxiliary
output. This module computes that matching; the solver is ``hungarian.py``.

Slot order: the matched ground truth is scattered to the slots that won it,
so the losses see targets per slot ([B, P, NQ], [B, NQ, NC]) instead of
DeepLab2's logits permuted into ground-truth order. The two are equal; the
slot order needs no -99999 padding and treats the case of more ground-truth
masks than slots explicitly (see ``Matching``).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from remax_tf.losses.hungarian import linear_sum_assignment
from remax_tf.losses.targets import GroundTruth

# DeepLab2 max_deeplab_loss.py _mask_similarity: denominator epsilon.
DICE_SIMILARITY_EPSILON = 1e-5


class Matching(NamedTuple):
    """The matching of one image batch, in slot order.

    When there are more valid ground-truth masks than slots, the NQ masks of
    least total cost are matched and the others get no slot: they have no
    class target and no dice term, and their pixels have an all-zero mask-ID
    target (DeepLab2 instead gives those pixels a target on a padded logit of
    -99999, i.e. a finite but ~1e5 mask-ID loss).
    """

    # [B, G, NQ] 0/1: ground-truth mask g is matched to slot q.
    permutation: tf.Tensor
    # [B, NQ] 1.0 for slots matched to a ground-truth mask.
    slot_matched: tf.Tensor
    # [B, NQ, NC] one-hot class of each slot's mask (zero when unmatched).
    slot_class_one_hot: tf.Tensor
    # [B, P, NQ] each slot's ground-truth mask (zero when unmatched).
    slot_pixel_targets: tf.Tensor
    # [B, NQ] dice between each matched slot and its mask (no gradient).
    matched_mask_dice: tf.Tensor
    # [B, NQ] probability each matched slot gives its mask's class (no gradient).
    matched_class_prob: tf.Tensor


def dice_similarity(gt_masks: tf.Tensor, pred_masks: tf.Tensor) -> tf.Tensor:
    """[B, P, G] 0/1 and [B, P, Q] probabilities -> [B, G, Q] soft dice.

    DeepLab2 ``_mask_similarity(metric='dice')``:
    |g . q| / ((|g| + |q|) / 2 + 1e-5).
    """
    intersection = tf.einsum("bpg,bpq->bgq", gt_masks, pred_masks)
    denominator = (
        tf.reduce_sum(gt_masks, axis=1)[:, :, None]
        + tf.reduce_sum(pred_masks, axis=1)[:, None, :]
    ) / 2.0
    return intersection / (denominator + DICE_SIMILARITY_EPSILON)


def match_predictions(
    gt: GroundTruth, mask_logits: tf.Tensor, class_logits: tf.Tensor
) -> Matching:
    """Hungarian matching of the slots to the ground-truth masks.

    Args:
      gt: Ground truth at the mask-logit resolution.
      mask_logits: [B, P, NQ] (final output, not relaxed).
      class_logits: [B, NQ, NC + 1], void last.
    """
    # The similarity is computed on softmax probabilities over slots, with
    # void pixels removed, as in DeepLab2.
    mask_probs = tf.nn.softmax(mask_logits, axis=-1) * gt.pixel_non_void[:, :, None]
    mask_similarity = dice_similarity(gt.pixel_mask_one_hot, mask_probs)
    class_probs = tf.nn.softmax(class_logits, axis=-1)[:, :, :-1]
    class_similarity = tf.einsum("bgc,bqc->bgq", gt.mask_class_one_hot, class_probs)
    # Maximise the PQ-style similarity = minimise its negative.
    permutation = linear_sum_assignment(
        -mask_similarity * class_similarity, row_mask=gt.mask_non_void > 0.5
    )
    slot_matched = tf.reduce_sum(permutation, axis=1)
    return Matching(
        permutation=permutation,
        slot_matched=slot_matched,
        slot_class_one_hot=tf.einsum(
            "bgq,bgc->bqc", permutation, gt.mask_class_one_hot
        ),
        slot_pixel_targets=tf.einsum(
            "bpg,bgq->bpq", gt.pixel_mask_one_hot, permutation
        ),
        matched_mask_dice=tf.stop_gradient(
            tf.reduce_sum(mask_similarity * permutation, axis=1)
        ),
        matched_class_prob=tf.stop_gradient(
            tf.reduce_sum(class_similarity * permutation, axis=1)
        ),
    )
