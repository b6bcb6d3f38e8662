"""The PQ-style loss of MaX-DeepLab (Eq. 10 of its paper), as kMaX uses it.

Two terms (DeepLab2 model/loss/max_deeplab_loss.py with base_loss.py's
``FocalCrossEntropyLoss`` and ``MaskDiceLoss``):

* class term: per slot, cross-entropy of the class logits (NC + void)
  against the matched class (void for unmatched slots), times
  alpha = 0.75 for matched slots and 1 - alpha = 0.25 for unmatched ones,
  times a weight: the matched mask dice for matched slots, the fraction of the
  slot's mask that lies on void pixels for unmatched ones (both floored at
  1e-5, no gradient). Averaged over the slots with non-zero loss.
* mask dice term: per matched slot, 1 - dice(softmax over slots, mask)
  weighted by the matched class probability (floored at 1e-5, no gradient),
  summed over slots and scaled by alpha / NQ so that both terms share the
  same normalisation.

With ReClass the class target of every slot is the soft target of Eq. (4)
of ReMaX (matched slots: void target 0; unmatched slots: void target 1 plus
eta * y_m on the real classes); the cross-entropy is then
-sum_c y_c log softmax(p)_c over the NC + 1 classes with targets that need
not sum to one.
"""

from __future__ import annotations

import tensorflow as tf

from remax_tf.losses.reduction import mean_over_nonzero

# DeepLab2 MaXDeepLabLoss(focal_loss_alpha=0.75): weight of matched slots in
# the class term (unmatched: 1 - alpha) and of the mask dice term.
FOCAL_LOSS_ALPHA = 0.75
# DeepLab2 max_deeplab_loss.py: lower bound of the dynamic loss weights, so
# that no weighted loss is exactly zero (which would change the normaliser).
DYNAMIC_WEIGHT_FLOOR = 1e-5
# DeepLab2 _mask_similarity: epsilon of the void-overlap ratio's denominator.
VOID_RATIO_EPSILON = 1e-5
# DeepLab2 base_loss.compute_mask_dice_loss: smoothing of the dice loss.
DICE_LOSS_SMOOTH = 1.0


def void_overlap_ratio(mask_probs: tf.Tensor, pixel_non_void: tf.Tensor) -> tf.Tensor:
    """[B, P, NQ] slot probabilities -> [B, NQ] share of each slot on void.

    DeepLab2 ``_mask_similarity(void, probs, 'intersection_over_prediction')``.
    """
    void = 1.0 - pixel_non_void
    on_void = tf.einsum("bp,bpq->bq", void, mask_probs)
    return tf.stop_gradient(
        on_void / (tf.reduce_sum(mask_probs, axis=1) + VOID_RATIO_EPSILON)
    )


def class_term_targets(
    slot_class_targets: tf.Tensor, slot_matched: tf.Tensor
) -> tf.Tensor:
    """[B, NQ, NC] real-class targets -> [B, NQ, NC + 1] with void last.

    Unmatched slots get void target 1 on top of their real-class targets:
    zero for kMaX's one-hot targets, eta * y_m with ReClass (Eq. 4 applied to
    their void one-hot, as the public ReMaX code does). Matched slots get
    void target 0.
    """
    matched = slot_matched[:, :, None]
    return tf.concat([slot_class_targets, 1.0 - matched], axis=-1)


def class_term_weights(
    slot_matched: tf.Tensor, matched_mask_dice: tf.Tensor, void_ratio: tf.Tensor
) -> tf.Tensor:
    """[B, NQ] dynamic weights of the class term (no gradient)."""
    return tf.stop_gradient(
        slot_matched * tf.maximum(matched_mask_dice, DYNAMIC_WEIGHT_FLOOR)
        + (1.0 - slot_matched) * tf.maximum(void_ratio, DYNAMIC_WEIGHT_FLOOR)
    )


def class_term(
    class_logits: tf.Tensor,
    targets: tf.Tensor,
    weights: tf.Tensor,
    alpha: float = FOCAL_LOSS_ALPHA,
) -> tf.Tensor:
    """Per-sample class term [B].

    Args:
      class_logits: [B, NQ, NC + 1].
      targets: [B, NQ, NC + 1] (one-hot, or ReClass soft targets), void last.
      weights: [B, NQ] from ``class_term_weights``.
      alpha: Weight of matched slots; unmatched slots get 1 - alpha.
    """
    cross_entropy = -tf.reduce_sum(
        targets * tf.nn.log_softmax(class_logits, axis=-1), axis=-1
    )
    is_void = targets[:, :, -1]
    alpha_weights = alpha * (1.0 - is_void) + (1.0 - alpha) * is_void
    return mean_over_nonzero(cross_entropy * alpha_weights * weights)


def dice_loss_per_slot(
    mask_logits: tf.Tensor, slot_pixel_targets: tf.Tensor, valid_pixels: tf.Tensor
) -> tf.Tensor:
    """[B, NQ]: 1 - (2|p.t| + 1) / (|p| + |t| + 1), softmax over slots.

    DeepLab2 ``compute_mask_dice_loss``; predictions count only on
    ``valid_pixels`` [B, P] (pixels of any ground-truth mask).
    """
    probs = tf.nn.softmax(mask_logits, axis=-1) * valid_pixels[:, :, None]
    intersection = 2.0 * tf.reduce_sum(probs * slot_pixel_targets, axis=1)
    denominator = tf.reduce_sum(probs, axis=1) + tf.reduce_sum(
        slot_pixel_targets, axis=1
    )
    return 1.0 - (intersection + DICE_LOSS_SMOOTH) / (denominator + DICE_LOSS_SMOOTH)


def mask_dice_term(
    mask_logits: tf.Tensor,
    slot_pixel_targets: tf.Tensor,
    valid_pixels: tf.Tensor,
    slot_matched: tf.Tensor,
    matched_class_prob: tf.Tensor,
    alpha: float = FOCAL_LOSS_ALPHA,
) -> tf.Tensor:
    """Per-sample mask dice term [B].

    Args:
      mask_logits: [B, P, NQ] (relaxed by ReMask on relaxed stages).
      slot_pixel_targets: [B, P, NQ] matched masks.
      valid_pixels: [B, P] 1.0 on pixels of any ground-truth mask.
      slot_matched: [B, NQ].
      matched_class_prob: [B, NQ] (no gradient).
      alpha: Same alpha as the class term.
    """
    num_slots = mask_logits.shape[-1]
    weights = slot_matched * tf.maximum(matched_class_prob, DYNAMIC_WEIGHT_FLOOR)
    dice = dice_loss_per_slot(mask_logits, slot_pixel_targets, valid_pixels)
    return tf.reduce_sum(dice * tf.stop_gradient(weights), axis=-1) * (
        alpha / num_slots
    )
