"""Mask-wise post-processing (SPEC section 2), batched and graph friendly.

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

How the work is kept small (issue 16), with results bitwise equal to pasting
all NQ slots in rank order (the pre-issue-16 implementation, kept as
``tests/postprocess/reference_maskwise.py``):

* a slot whose class confidence misses its threshold never changes a pixel,
  so only the *candidates*, the slots that pass it, are visited: they are
  compacted to the front in rank order (a sort of NQ keys) and the loop runs
  a dynamic number of times, the largest candidate count of the batch
  (typically a few dozen of 128 on a trained model, 0 on an empty image);
* only the candidates' full-resolution binary masks are formed (one gather of
  those channels of the per-pixel softmax), never all NQ of them;
* ranking and mask scores stay at the model's stride-4 resolution, where they
  are cheap; the loop body is boolean element-wise ops and two sums;
* instance ids are 1 + the slot's rank among *all* slots, as before, and the
  per-pixel class and score maps are gathered once after the loop.

The per-pixel softmax and its maximum (``instance_score``) are computed over
all slots at the output resolution as before: they define the masks, and any
other order of operations would change rounding.
"""

from __future__ import annotations

import tensorflow as tf

from remax_tf.postprocess.panoptic_merge import SlotAssignment
from remax_tf.postprocess.slot_predictions import class_predictions


def _candidates(passes: tf.Tensor):
    """Ranks of the slots that pass their threshold, compacted to the front.

    Args:
      passes: [B, NQ] bool, per rank.

    Returns:
      ``(ranks [B, K] int32, valid [B, K] bool)`` where K is the largest
      number of passing slots in the batch; row b lists its passing ranks in
      increasing order, then (``valid`` false) padding.
    """
    num_slots = int(passes.shape[-1])
    ranks = tf.range(num_slots, dtype=tf.int32)[tf.newaxis]
    # Passing ranks keep their rank as key, the others sort behind them; the
    # keys are distinct, so the order is fully determined.
    keys = tf.where(passes, ranks, ranks + num_slots)
    compact = tf.argsort(keys, axis=-1, direction="ASCENDING", stable=True)
    num_passing = tf.reduce_sum(tf.cast(passes, tf.int32), axis=-1)
    count = tf.reduce_max(num_passing)
    compact = compact[:, :count]
    valid = tf.range(count, dtype=tf.int32)[tf.newaxis] < num_passing[:, tf.newaxis]
    return tf.cast(compact, tf.int32), valid


def maskwise_assignment(
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
    ranking_score = tf.pow(confidence, reorder_class_weight) * tf.pow(
        mask_score, reorder_mask_weight
    )
    order = tf.argsort(ranking_score, axis=-1, direction="DESCENDING", stable=True)
    class_sorted = tf.gather(class_index, order, batch_dims=1)
    confidence_sorted = tf.gather(confidence, order, batch_dims=1)
    passes = tf.where(
        class_sorted < num_thing_classes,
        confidence_sorted >= thing_threshold,
        confidence_sorted >= stuff_threshold,
    )
    candidate_ranks, valid = _candidates(passes)
    candidate_slots = tf.gather(order, candidate_ranks, batch_dims=1)
    # [B, K, H, W] binary masks of the candidates only, rank-major so that each
    # loop step reads one contiguous mask.
    masks = tf.transpose(
        tf.gather(probs, candidate_slots, axis=3, batch_dims=1)
        > pixel_confidence_threshold,
        [0, 3, 1, 2],
    )
    count = tf.shape(candidate_ranks)[1]
    num_slots = int(mask_logits.shape[-1])

    def paste(step, rank_plus_one_map):
        mask = masks[:, step]
        free = tf.logical_and(mask, tf.equal(rank_plus_one_map, 0))
        # Pixel counts are exact in float32 (fewer than 2**24 pixels), so
        # the overlap test rounds exactly as DeepLab2's.
        area = tf.reduce_sum(tf.cast(mask, tf.float32), axis=[1, 2])
        free_area = tf.reduce_sum(tf.cast(free, tf.float32), axis=[1, 2])
        keep = tf.logical_and(valid[:, step], free_area > area * overlapping_threshold)
        new = tf.logical_and(free, keep[:, tf.newaxis, tf.newaxis])
        rank_plus_one_map = tf.where(
            new, candidate_ranks[:, step, tf.newaxis, tf.newaxis] + 1, rank_plus_one_map
        )
        return step + 1, rank_plus_one_map

    _, rank_plus_one_map = tf.while_loop(
        lambda step, _: step < count,
        paste,
        (tf.constant(0, tf.int32), tf.zeros(tf.shape(probs)[:3], tf.int32)),
        maximum_iterations=num_slots,
    )

    occupied = rank_plus_one_map > 0
    # Unpasted pixels point at rank 0; they are outside `confident` anyway.
    rank_map = tf.maximum(rank_plus_one_map - 1, 0)
    pixel_class = tf.gather(class_sorted, rank_map, batch_dims=1)
    zeros = tf.zeros(tf.shape(rank_map), tf.float32)
    semantic_score = tf.where(
        occupied, tf.gather(confidence_sorted, rank_map, batch_dims=1), zeros
    )
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
        confident=occupied,
        instance_score=instance_score,
        semantic_score=semantic_score,
    )
