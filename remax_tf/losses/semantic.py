"""Semantic cross-entropy: kMaX's auxiliary semantic loss and ReMaX's m_sem loss.

kMaX (DeepLab2 ``MaXDeepLabLoss._call_semantic_loss`` with
``TopKCrossEntropyLoss``): softmax cross-entropy of the auxiliary semantic
logits (dataset-id channels) against the semantic label strided down to the
logit resolution, times the per-pixel semantic weights, void ignored; top-k
percent hardest pixels; mean over non-zero entries. With
``semantic_sample_k > 0`` only K pixels sampled by inverse mask area enter.

ReMaX (paper Sec. 3.1): each relaxed stage's m_sem (things-then-stuff
channels, at the mask-logit resolution) gets the same cross-entropy against
the label remapped to things-then-stuff order, on all pixels (no top-k, no
sampling), with the per-pixel semantic weights.
"""

from __future__ import annotations

import tensorflow as tf

from remax_tf.losses.reduction import average_top_k
from remax_tf.losses.sampling import area_sampling_logits
from remax_tf.losses.sampling import gumbel_top_k_indices
from remax_tf.losses.targets import GroundTruth
from remax_tf.losses.targets import strided_downsample


def semantic_cross_entropy(
    logits: tf.Tensor,
    labels: tf.Tensor,
    weights: tf.Tensor,
    ignore_label: int,
    top_k_percent: float = 1.0,
) -> tf.Tensor:
    """Per-sample softmax cross-entropy [B].

    Args:
      logits: [B, ..., C].
      labels: [B, ...] int class index per element.
      weights: [B, ...] float per-element weights.
      ignore_label: Label whose elements get weight 0.
      top_k_percent: Fraction of hardest elements kept.
    """
    labels = tf.cast(labels, tf.int32)
    num_classes = logits.shape[-1]
    weights = weights * tf.cast(tf.not_equal(labels, ignore_label), weights.dtype)
    loss = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.one_hot(labels, num_classes), logits=logits
    )
    return average_top_k(loss * weights, top_k_percent)


def kmax_semantic_loss(
    semantic_logits: tf.Tensor,
    gt_semantic: tf.Tensor,
    gt_weights: tf.Tensor,
    ignore_label: int,
    top_k_percent: float,
    sample_k: int,
    sample_temperature: float,
    gt: GroundTruth,
) -> tf.Tensor:
    """kMaX's auxiliary semantic loss [B].

    Args:
      semantic_logits: [B, hs, ws, num_classes] (dataset-id channels).
      gt_semantic: [B, H, W] dataset semantic ids.
      gt_weights: [B, H, W] per-pixel weights.
      ignore_label: Dataset void id.
      top_k_percent: Fraction of hardest pixels kept.
      sample_k: Pixels sampled by inverse mask area (0: all pixels).
      sample_temperature: Temperature of that sampling.
      gt: Ground truth at the mask-logit resolution (for the sampling).
    """
    height, width, channels = semantic_logits.shape[1:4]
    labels = strided_downsample(tf.cast(gt_semantic, tf.int32), (height, width))
    weights = strided_downsample(tf.cast(gt_weights, tf.float32), (height, width))
    if sample_k == 0:
        return semantic_cross_entropy(
            semantic_logits, labels, weights, ignore_label, top_k_percent
        )
    num_pixels = height * width
    if gt.inverse_pixel_mask_area.shape[-1] != num_pixels:
        raise ValueError(
            f"semantic_sample_k > 0 samples pixels of the mask-logit resolution, "
            f"but the semantic logits are {height}x{width} "
            f"({num_pixels} pixels vs {gt.inverse_pixel_mask_area.shape[-1]}). "
            "Fix: set max_deeplab.semantic_sample_k to 0 or predict the semantic "
            "logits at the mask-logit resolution."
        )
    batch = tf.shape(semantic_logits)[0]
    indices = gumbel_top_k_indices(
        area_sampling_logits(
            gt.inverse_pixel_mask_area, gt.pixel_non_void, sample_temperature
        ),
        sample_k,
    )

    def sample(tensor, depth=None):
        shape = [batch, num_pixels] + ([depth] if depth else [])
        return tf.gather(tf.reshape(tensor, shape), indices, batch_dims=1)

    return semantic_cross_entropy(
        sample(semantic_logits, channels),
        sample(labels),
        sample(weights),
        ignore_label,
        top_k_percent,
    )


def remax_semantic_loss(semantic_logits: tf.Tensor, gt: GroundTruth) -> tf.Tensor:
    """ReMaX per-stage semantic loss [B] on m_sem [B, P or h, w, NC]."""
    batch = tf.shape(semantic_logits)[0]
    logits = tf.reshape(semantic_logits, [batch, -1, semantic_logits.shape[-1]])
    return semantic_cross_entropy(
        logits, gt.pixel_class_index, gt.pixel_semantic_weight, ignore_label=-1
    )
