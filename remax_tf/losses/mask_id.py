"""Mask-ID cross-entropy: which slot does each pixel belong to?

Targets come from the matching: pixel p has target 1 on the slot matched to
its ground-truth mask and 0 elsewhere ([B, P, NQ], ``Matching.slot_pixel_targets``).

* ``softmax`` (kMaX, DeepLab2's ``TopKCrossEntropyLoss`` on the permuted
  logits): per pixel, -log softmax_q(m)[target slot]; a single distribution
  over slots, so only the positive slot appears in the loss.
* ``sigmoid`` (ReMaX's default, paper Table 2): every slot is an independent
  binary mask, so per pixel the loss is the binary cross-entropy of all NQ
  slots: -log sigma(m_t) for the matched slot t (the false-negative part)
  plus -sum_{q != t} log(1 - sigma(m_q)) over every other slot, matched to
  another mask or unmatched (the false-positive part), the loss whose FP/FN
  imbalance the paper's Figures 1 and 6 show. ``sigmoid_reduction`` "mean"
  (default) divides that sum by NQ, as Keras' binary_crossentropy and
  PyTorch's default reduction average over the slot axis; "sum" keeps it
  (about NQ ln 2 per pixel at initialisation: 44 with 64 slots, against
  ln NQ = 4.2 for softmax). The paper does not say which; the FP/FN ratio is
  the same for both. Measured (docs/benchmarks.md): with "sum" the sigmoid
  baseline does not train in a short schedule, against the paper's Table 2.

Both are reduced like DeepLab2: weighted per-pixel losses, top-k percent
hardest pixels, mean over non-zero entries. Pixels that count: non-void
pixels that belong to a matched ground-truth mask. Void and crowd pixels have
no target (as in DeepLab2, where their loss is zero); pixels of ground-truth
masks left unmatched (more masks than slots) are excluded too.
"""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from remax_tf.config.resolved import MASK_ID_SIGMOID_REDUCTIONS
from remax_tf.config.resolved import check_remax_activation
from remax_tf.losses.reduction import average_top_k

# Largest probability used in log(1 - p) of the softmax FP part (analysis only).
_MAX_PROB = 1.0 - 1e-7


def check_activation(activation: str) -> str:
    return check_remax_activation(activation, "mask-ID")


def per_pixel_mask_id_loss(
    mask_logits: tf.Tensor,
    slot_pixel_targets: tf.Tensor,
    activation: str,
    sigmoid_reduction: str = "mean",
) -> tf.Tensor:
    """[B, P, NQ] logits and 0/1 targets -> [B, P] unweighted loss.

    ``sigmoid_reduction`` ("sum" or "mean" over the NQ slots) applies to
    the sigmoid loss only.
    """
    check_activation(activation)
    if activation == "softmax":
        return tf.nn.softmax_cross_entropy_with_logits(
            labels=slot_pixel_targets, logits=mask_logits, axis=-1
        )
    if sigmoid_reduction not in MASK_ID_SIGMOID_REDUCTIONS:
        raise ValueError(
            f"mask-ID sigmoid reduction {sigmoid_reduction!r} is unknown; known: "
            f"{', '.join(MASK_ID_SIGMOID_REDUCTIONS)} "
            "(model_options.remax.mask_id_sigmoid_reduction)."
        )
    per_slot = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=slot_pixel_targets, logits=mask_logits
    )
    if sigmoid_reduction == "mean":
        return tf.reduce_mean(per_slot, axis=-1)
    return tf.reduce_sum(per_slot, axis=-1)


def mask_id_cross_entropy(
    mask_logits: tf.Tensor,
    slot_pixel_targets: tf.Tensor,
    pixel_non_void: tf.Tensor,
    activation: str,
    top_k_percent: float = 1.0,
    sigmoid_reduction: str = "mean",
) -> tf.Tensor:
    """Per-sample mask-ID cross-entropy [B].

    Args:
      mask_logits: [B, P, NQ] (relaxed by ReMask on relaxed stages).
      slot_pixel_targets: [B, P, NQ] from the matching.
      pixel_non_void: [B, P].
      activation: "softmax" (kMaX) or "sigmoid" (ReMaX).
      top_k_percent: Fraction of hardest pixels kept.
      sigmoid_reduction: "sum" or "mean" of the sigmoid per-slot terms.
    """
    has_target = tf.reduce_sum(slot_pixel_targets, axis=-1)
    weights = pixel_non_void * has_target
    loss = per_pixel_mask_id_loss(
        mask_logits, slot_pixel_targets, activation, sigmoid_reduction
    )
    return average_top_k(loss * weights, top_k_percent)


def mask_id_fp_fn_parts(
    mask_logits: tf.Tensor, slot_pixel_targets: tf.Tensor, activation: str
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Per-pixel false-positive and false-negative parts [B, P] each.

    For ReMaX Figures 1 and 6 (FP/FN loss ratio). Both parts are binary
    cross-entropies on the per-slot probabilities p (sigma(m) for "sigmoid",
    softmax over slots for "softmax"): FN = -sum_q t_q log p_q (target
    slots), FP = -sum_q (1 - t_q) log(1 - p_q) (all other slots).
    For "sigmoid", FP + FN is exactly ``per_pixel_mask_id_loss``. For
    "softmax", FN is exactly the kMaX mask-ID loss and FP is the implicit
    penalty on the other slots, which the softmax loss does not contain
    (computed with p clipped below 1 - 1e-7, for analysis only).
    Pixels without target (void, crowd) have FN = 0; mask them as needed.
    """
    check_activation(activation)
    targets = slot_pixel_targets
    if activation == "sigmoid":
        # -log sigma(m) = softplus(-m); -log(1 - sigma(m)) = softplus(m).
        fn = tf.reduce_sum(targets * tf.nn.softplus(-mask_logits), axis=-1)
        fp = tf.reduce_sum((1.0 - targets) * tf.nn.softplus(mask_logits), axis=-1)
        return fp, fn
    log_probs = tf.nn.log_softmax(mask_logits, axis=-1)
    fn = -tf.reduce_sum(targets * log_probs, axis=-1)
    probs = tf.minimum(tf.exp(log_probs), _MAX_PROB)
    fp = -tf.reduce_sum((1.0 - targets) * tf.math.log1p(-probs), axis=-1)
    return fp, fn
