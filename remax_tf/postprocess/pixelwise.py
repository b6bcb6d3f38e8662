"""Pixel-wise post-processing and the unthresholded semantic prediction.

Pixel-wise (MaX-DeepLab's, DeepLab2 ``max_deeplab.py`` pixel-wise branch):
slots whose class confidence is below ``class_threshold`` are removed from the
per-pixel softmax over slots; each pixel goes to its best remaining slot and
is kept when that slot's probability exceeds ``pixel_confidence_threshold``
and no removed slot had a higher logit there.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from remax_tf.postprocess.panoptic_merge import SlotAssignment
from remax_tf.postprocess.slot_predictions import class_predictions

# DeepLab2 max_deeplab.py _SMALL_CONSTANT_FOR_SOFTMAX: the logit that removed
# slots take, so that their softmax probability is 0.
REMOVED_SLOT_LOGIT = -99999.0


def pixelwise_assignment(
    mask_logits: tf.Tensor,
    class_logits: tf.Tensor,
    pixel_confidence_threshold: float,
    class_threshold: float,
) -> SlotAssignment:
    """Assigns each pixel to its most likely confident slot.

    Args:
      mask_logits: [B, H, W, NQ] mask logits, already at the output size.
      class_logits: [B, NQ, NC + 1] class logits, void last.
      pixel_confidence_threshold: Minimum per-pixel probability of the chosen
        slot after removing unconfident slots.
      class_threshold: Minimum class confidence of a slot.

    Returns:
      The :class:`SlotAssignment`; ``mask_id_plus_one`` is 1 + the slot index.
    """
    mask_logits = tf.cast(mask_logits, tf.float32)
    class_index, confidence = class_predictions(class_logits)
    detected = tf.cast(confidence >= class_threshold, tf.float32)[:, None, None, :]
    detected_logits = mask_logits * detected + REMOVED_SLOT_LOGIT * (1.0 - detected)
    pixel_confidence = tf.reduce_max(tf.nn.softmax(detected_logits, axis=-1), axis=-1)
    # A pixel whose overall best slot was removed is not covered.
    best_is_detected = tf.equal(
        tf.reduce_max(mask_logits, axis=-1), tf.reduce_max(detected_logits, axis=-1)
    )
    confident = tf.logical_and(
        pixel_confidence > pixel_confidence_threshold, best_is_detected
    )
    slot_map = tf.argmax(detected_logits, axis=-1, output_type=tf.int32)
    pixel_class = tf.gather(class_index, slot_map, batch_dims=1)
    semantic_score = tf.gather(confidence, slot_map, batch_dims=1)

    # DeepLab2: an image without any confident slot gets the empty result
    # (slot id 1 everywhere, nothing covered, zero scores).
    any_detection = tf.reduce_any(confidence >= class_threshold, axis=-1)[:, None, None]
    zeros = tf.zeros_like(pixel_confidence)
    return SlotAssignment(
        mask_id_plus_one=tf.where(any_detection, slot_map + 1, tf.ones_like(slot_map)),
        class_index=tf.where(any_detection, pixel_class, tf.zeros_like(pixel_class)),
        confident=tf.logical_and(confident, any_detection),
        instance_score=tf.where(any_detection, pixel_confidence, zeros),
        semantic_score=tf.where(any_detection, semantic_score, zeros),
    )


def argmax_semantic(
    mask_logits: tf.Tensor,
    class_logits: tf.Tensor,
    thing_stuff_class_ids: Sequence[int],
) -> tf.Tensor:
    """Semantic map without any thresholding: the class of each pixel's slot.

    DeepLab2 computes ``semantic_pred`` with a second, threshold-free
    pixel-wise pass, so that mIoU never sees void predictions.

    Args:
      mask_logits: [B, H, W, NQ] mask logits at the output size.
      class_logits: [B, NQ, NC + 1] class logits, void last.
      thing_stuff_class_ids: Dataset semantic id of each class index.

    Returns:
      [B, H, W] int32 dataset semantic ids.
    """
    class_index, _ = class_predictions(class_logits)
    slot_map = tf.argmax(mask_logits, axis=-1, output_type=tf.int32)
    pixel_class = tf.gather(class_index, slot_map, batch_dims=1)
    return tf.gather(tf.constant(list(thing_stuff_class_ids), tf.int32), pixel_class)
