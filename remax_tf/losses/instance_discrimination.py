"""Instance discrimination on the pixel embeddings (MaX-DeepLab / CMT-DeepLab).

DeepLab2 (model/loss/max_deeplab_loss.py) has two versions, chosen by
``max_deeplab.instance_discrimination_sample_k``:

* K > 0, pixel-contrastive (CMT-DeepLab, what kMaX configs use): sample K
  pixels by inverse mask area (``sampling.py``), target = the K x K
  "same mask" matrix with each row normalised to sum to one, logits = cosine
  similarities of the (L2-normalised) features / 0.3; soft-target softmax
  cross-entropy per sampled pixel, averaged over pixels with non-zero loss
  (sampled void or crowd pixels have an all-zero target and drop out).
* K = 0, MaX-DeepLab's original: logits = similarity of each pixel to the
  L2-normalised mean feature of every ground-truth mask / 0.3 (void masks
  masked out), cross-entropy against the pixel's mask on thing pixels only.

Instance discrimination uses pixel features, not mask logits, so ReMask
does not change it.
"""

from __future__ import annotations

import tensorflow as tf

from remax_tf.losses.reduction import average_top_k
from remax_tf.losses.sampling import SOFTMAX_MASKING_CONSTANT

# DeepLab2 MaXDeepLabLoss(instance_discrimination_temperature=0.3).
INSTANCE_DISCRIMINATION_TEMPERATURE = 0.3


def pixel_contrastive_loss(
    pixel_feature: tf.Tensor,
    pixel_mask_one_hot: tf.Tensor,
    sample_indices: tf.Tensor,
    temperature: float = INSTANCE_DISCRIMINATION_TEMPERATURE,
    top_k_percent: float = 1.0,
) -> tf.Tensor:
    """Per-sample pixel-contrastive instance discrimination [B].

    Args:
      pixel_feature: [B, P, D] normalised pixel embeddings.
      pixel_mask_one_hot: [B, P, G] ground-truth mask ids.
      sample_indices: [B, K] sampled pixels.
      temperature: Contrast temperature.
      top_k_percent: Fraction of hardest sampled pixels kept.
    """
    gt = tf.gather(pixel_mask_one_hot, sample_indices, batch_dims=1)
    same_mask = tf.einsum("bkg,bjg->bkj", gt, gt)
    same_mask /= tf.maximum(tf.reduce_sum(same_mask, axis=-1, keepdims=True), 1.0)
    feature = tf.gather(pixel_feature, sample_indices, batch_dims=1)
    logits = tf.einsum("bkd,bjd->bkj", feature, feature) / temperature
    loss = tf.nn.softmax_cross_entropy_with_logits(labels=same_mask, logits=logits)
    return average_top_k(loss, top_k_percent)


def mask_average_loss(
    pixel_feature: tf.Tensor,
    pixel_mask_one_hot: tf.Tensor,
    mask_area: tf.Tensor,
    mask_non_void: tf.Tensor,
    pixel_thing: tf.Tensor,
    temperature: float = INSTANCE_DISCRIMINATION_TEMPERATURE,
    top_k_percent: float = 1.0,
) -> tf.Tensor:
    """Per-sample MaX-DeepLab instance discrimination [B] (thing pixels only)."""
    mask_feature = tf.einsum("bpd,bpg->bgd", pixel_feature, pixel_mask_one_hot)
    mask_feature /= tf.maximum(mask_area, 1.0)[:, :, None]
    mask_feature = tf.math.l2_normalize(mask_feature, axis=-1)
    logits = tf.einsum("bpd,bgd->bpg", pixel_feature, mask_feature) / temperature
    valid = mask_non_void[:, None, :]
    logits = valid * logits + (1.0 - valid) * SOFTMAX_MASKING_CONSTANT
    loss = tf.nn.softmax_cross_entropy_with_logits(
        labels=pixel_mask_one_hot, logits=logits
    )
    return average_top_k(loss * pixel_thing, top_k_percent)
