"""The mask-wise post-processing as it was before commit d39d9e6, frozen as the
reference that :func:`remax_tf.postprocess.maskwise_assignment` must equal
bitwise (tests/postprocess/test_maskwise_equivalence.py). It pastes all NQ
full-resolution masks in a ``tf.while_loop``; do not optimise it.

Original docstring: mask-wise post-processing, batched and graph friendly.

The rules are those of DeepLab2's ``model/post_processor/max_deeplab.py``
(mask-wise branch), the post-processing of kMaX-DeepLab:

1. per pixel, a softmax over the slots; each slot's binary mask is where its
   probability exceeds ``pixel_confidence_threshold``;
2. a slot's mask score is its mean probability over its own binary mask,
   both taken at the model's output resolution (stride 4), before the
   upsampling that the binary masks of step 4 use;
3. slots are ranked by ``confidence ** reorder_class_weight *
   mask_score ** reorder_mask_weight`` (descending, stable);
4. in that order a slot is pasted on the still empty pixels of its mask when
   its class confidence reaches the thing (or stuff) threshold and those
   empty pixels are more than ``overlapping_threshold`` of its mask.

The pasting is inherently sequential, so it runs as a ``tf.while_loop`` over
the ranks, vectorised over the batch; every shape is static.
"""

from __future__ import annotations

import tensorflow as tf

from remax_tf.postprocess.panoptic_merge import SlotAssignment
from remax_tf.postprocess.slot_predictions import class_predictions


def reference_maskwise_assignment(
    mask_logits: tf.Tensor,
    resized_mask_logits: tf.Tensor,
    class_logits: tf.Tensor,
    num_thing_classes: int,
    pixel_confidence_threshold: float,
    thing_threshold: float,
    stuff_threshold: float,
    overlapping_threshold: float,
    reorder_class_weight: float,
    reorder_mask_weight: float,
) -> SlotAssignment:
    """Assigns pixels to slots by pasting binary masks in confidence order.

    Args:
      mask_logits: [B, h, w, NQ] mask logits at the model's resolution; the
        mask scores of the ranking are computed from them, as DeepLab2 does.
      resized_mask_logits: [B, H, W, NQ] the same logits resized to the output
        size; the binary masks are computed from them.
      class_logits: [B, NQ, NC + 1] class logits, void last.
      num_thing_classes: Class indices below this are things.
      pixel_confidence_threshold: A slot's mask is where its per-pixel
        probability (softmax over slots) is above this.
      thing_threshold: Minimum class confidence of a pasted thing slot.
      stuff_threshold: Minimum class confidence of a pasted stuff slot.
      overlapping_threshold: A slot is pasted only when its unoccupied pixels
        are more than this fraction of its mask.
      reorder_class_weight: Exponent of the class confidence in the ranking.
      reorder_mask_weight: Exponent of the mask score in the ranking.

    Returns:
      The :class:`SlotAssignment`; ``mask_id_plus_one`` is 1 + the slot's rank
      (DeepLab2 numbers pasted slots by rank, not by slot index).
    """
    class_index, confidence = class_predictions(class_logits)
    # max_deeplab.py ranks with mask scores taken before the upsampling.
    low_res_probs = tf.nn.softmax(tf.cast(mask_logits, tf.float32), axis=-1)
    low_res_binary = tf.cast(low_res_probs > pixel_confidence_threshold, tf.float32)
    mask_score = tf.math.divide_no_nan(
        tf.reduce_sum(low_res_probs * low_res_binary, axis=[1, 2]),
        tf.reduce_sum(low_res_binary, axis=[1, 2]),
    )
    probs = tf.nn.softmax(tf.cast(resized_mask_logits, tf.float32), axis=-1)
    binary = probs > pixel_confidence_threshold
    ranking_score = tf.pow(confidence, reorder_class_weight) * tf.pow(
        mask_score, reorder_mask_weight
    )
    order = tf.argsort(ranking_score, axis=-1, direction="DESCENDING", stable=True)
    class_sorted = tf.gather(class_index, order, batch_dims=1)
    confidence_sorted = tf.gather(confidence, order, batch_dims=1)
    # [B, NQ, H, W]: rank-major so each loop step reads one contiguous mask;
    # kept boolean (4x smaller than float) until a step needs it.
    masks_sorted = tf.gather(
        tf.transpose(binary, [0, 3, 1, 2]), order, axis=1, batch_dims=1
    )
    passes = tf.where(
        class_sorted < num_thing_classes,
        confidence_sorted >= thing_threshold,
        confidence_sorted >= stuff_threshold,
    )
    passes = tf.cast(passes, tf.float32)

    num_slots = int(mask_logits.shape[-1])
    canvas_shape = tf.shape(binary)[:3]
    zeros = tf.zeros(canvas_shape, tf.float32)

    def paste(rank, rank_plus_one_map, occupied, semantic_score):
        mask = tf.cast(masks_sorted[:, rank], tf.float32)
        area = tf.reduce_sum(mask, axis=[1, 2])
        free = mask * (1.0 - occupied)
        free_area = tf.reduce_sum(free, axis=[1, 2])
        keep = passes[:, rank] * tf.cast(
            free_area > area * overlapping_threshold, tf.float32
        )
        new = free * keep[:, None, None]
        rank_plus_one_map += new * tf.cast(rank + 1, tf.float32)
        occupied += new
        semantic_score = (1.0 - new) * semantic_score + new * (
            confidence_sorted[:, rank, None, None]
        )
        return rank + 1, rank_plus_one_map, occupied, semantic_score

    _, rank_plus_one_map, occupied, semantic_score = tf.while_loop(
        lambda rank, *_: rank < num_slots,
        paste,
        (tf.constant(0, tf.int32), zeros, zeros, zeros),
        maximum_iterations=num_slots,
    )

    # Unpasted pixels point at rank 0; they are outside `confident` anyway.
    rank_map = tf.maximum(tf.cast(tf.round(rank_plus_one_map), tf.int32) - 1, 0)
    pixel_class = tf.gather(class_sorted, rank_map, batch_dims=1)
    # DeepLab2 returns all-zero score maps for an image in which no slot reaches
    # either threshold.
    any_detection = tf.reduce_any(
        confidence >= min(thing_threshold, stuff_threshold), axis=-1
    )
    instance_score = tf.where(
        any_detection[:, None, None], tf.reduce_max(probs, axis=-1), zeros
    )
    return SlotAssignment(
        mask_id_plus_one=rank_map + 1,
        class_index=pixel_class,
        confident=occupied > 0.5,
        instance_score=instance_score,
        semantic_score=semantic_score,
    )
