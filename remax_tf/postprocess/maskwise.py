"""Mask-wise post-processing, batched and graph friendly.

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

How the work is kept small, with results bitwise equal to pasting all NQ
slots in rank order (the implementation before commit d39d9e6, kept as
``tests/postprocess/reference_maskwise.py``):

* a slot whose class confidence misses its threshold never changes a pixel,
  so only the *candidates*, the slots that pass it, are visited: they are
  compacted to the front in rank order (a sort of NQ keys); their count K is
  dynamic, the largest of the batch (a few of 64-128 on a trained model, 0
  on an empty image);
* only the candidates' full-resolution binary masks are formed (one gather of
  those channels of the per-pixel softmax), never all NQ of them;
* with a pixel threshold above 1/3 (DeepLab2's is 0.4) no pixel lies in more
  than two masks, and the paste needs no loop over images: per pixel the
  first and second covering candidates, one histogram of those pairs, and
  the paste decisions over K scalars, found in a few vectorised passes
  rather than K sequential steps (:func:`_paste_at_most_two_per_pixel`); lower thresholds paste the K masks
  one after the other (:func:`_paste_sequentially`, boolean loop body);
* ranking and mask scores stay at the model's stride-4 resolution, where they
  are cheap; instance ids are 1 + the slot's rank among *all* slots, as
  before, and the per-pixel class and score maps are gathered once at the end.

The per-pixel softmax over all slots at the output resolution and its
maximum (``instance_score``) are computed as before: they define the masks,
and any other order of operations would change rounding. They, the resize
and the semantic argmax are most of what remains.
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


# A pixel's probabilities sum to 1 (up to rounding far below 1e-3), so when
# three times the pixel threshold reaches this, no pixel lies in more than two
# binary masks.
_TWO_MASKS_PER_PIXEL = 1.001


def _paste_sequentially(
    covers, candidate_ranks, valid, overlapping_threshold, num_slots
) -> tf.Tensor:
    """Pastes the candidates' masks one after the other (any pixel threshold).

    Args:
      covers: [B, H, W, K] bool, the candidates' binary masks.
      candidate_ranks: [B, K] int32, their ranks.
      valid: [B, K] bool, false for the padding of images with fewer
        candidates.
      overlapping_threshold: See :func:`maskwise_assignment`.
      num_slots: NQ, the loop's static bound.

    Returns:
      [B, H, W] int32, 1 + the rank of the slot pasted on each pixel, 0 where
      none was.
    """
    # Rank-major, so that each step reads one contiguous mask.
    masks = tf.transpose(covers, [0, 3, 1, 2])
    count = tf.shape(candidate_ranks)[1]

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
        (tf.constant(0, tf.int32), tf.zeros(tf.shape(covers)[:3], tf.int32)),
        maximum_iterations=num_slots,
    )
    return rank_plus_one_map


def _paste_at_most_two_per_pixel(
    covering, candidate_ranks, valid, overlapping_threshold, num_slots
) -> tf.Tensor:
    """The same result as :func:`_paste_sequentially` when no pixel lies in
    more than two masks (pixel threshold above 1/3, DeepLab2's is 0.4), with
    a fixed number of passes over the image whatever the candidate count.

    Per pixel, ``first`` and ``second`` are the (up to) two candidates whose
    masks cover it, in rank order. A pixel goes to ``first`` if that one is
    pasted, else to ``second`` if that one is; so a candidate's free area when
    its turn comes is its ``first`` pixels plus its ``second`` pixels whose
    ``first`` was not pasted. One histogram of (first, second) pairs gives
    every such count; the decisions, sequential in rank, then need only K
    scalars each and come out of a few vectorised passes (see ``decide``).

    Args:
      covering: [B, H, W, C] int32: per pixel and channel, the index (below
        K) of a valid candidate whose mask covers the pixel, else
        ``num_slots``; the channels may be the NQ slots themselves, so that
        no candidate mask is ever gathered.
      candidate_ranks, valid, overlapping_threshold, num_slots: As
        :func:`_paste_sequentially`.

    Returns:
      As :func:`_paste_sequentially`.
    """
    none = num_slots  # "no candidate"; candidate indices are below K <= NQ
    bins = num_slots + 1
    count = tf.shape(candidate_ranks)[1]
    # The minimum over no channel (C = 0) is the int32 maximum: clip.
    first = tf.minimum(tf.reduce_min(covering, axis=-1), none)
    second = tf.minimum(
        tf.reduce_min(
            tf.where(tf.equal(covering, first[..., tf.newaxis]), none, covering),
            axis=-1,
        ),
        none,
    )
    # pairs[b, i, j]: pixels whose first candidate is i and second is j.
    batch = tf.shape(first)[0]
    offsets = tf.range(batch, dtype=tf.int32)[:, tf.newaxis, tf.newaxis] * bins
    pair_bins = tf.reshape(((offsets + first) * bins) + second, [-1])
    pairs = tf.reshape(
        tf.math.unsorted_segment_sum(
            tf.ones_like(pair_bins), pair_bins, num_segments=batch * bins * bins
        ),
        [batch, bins, bins],
    )
    as_first = tf.reduce_sum(pairs, axis=2)
    as_second = tf.reduce_sum(pairs, axis=1)
    area = tf.cast(as_first + as_second, tf.float32)
    valid = tf.pad(valid, [[0, 0], [0, bins - count]])

    def decide(pasted):
        # All K decisions at once from the current guess: a candidate's
        # "second" pixels are free unless their "first" was pasted.
        # pairs[:, i, k] is 0 unless i < k (a first precedes its second), so
        # decision k reads only earlier decisions; iterating this map from
        # "none pasted" fixes one more rank level per pass, and the first
        # guess that maps to itself is the sequential paste's outcome (a
        # strictly triangular system has one fixed point). Same integer
        # counts and float comparison as pasting one by one: bitwise equal.
        lost = tf.reduce_sum(
            tf.where(pasted[:, :, tf.newaxis], pairs, tf.zeros_like(pairs)), axis=1
        )
        free_area = tf.cast(as_first + as_second - lost, tf.float32)
        return tf.logical_and(valid, free_area > area * overlapping_threshold)

    def step(_, pasted, changed):
        del changed
        updated = decide(pasted)
        return 0, updated, tf.reduce_any(tf.not_equal(updated, pasted))

    # At most K + 1 passes (one per rank level, one to confirm); typically a
    # handful, since only overlapping candidates depend on each other.
    _, pasted, _ = tf.while_loop(
        lambda _, pasted, changed: changed,
        step,
        (0, tf.zeros([batch, bins], tf.bool), tf.constant(True)),
        maximum_iterations=num_slots + 2,
    )
    first_pasted = tf.gather(pasted, first, batch_dims=1)
    second_pasted = tf.gather(pasted, second, batch_dims=1)
    chosen = tf.where(first_pasted, first, tf.where(second_pasted, second, none))
    ranks = tf.pad(candidate_ranks, [[0, 0], [0, bins - count]])
    return tf.where(
        tf.equal(chosen, none), 0, tf.gather(ranks, chosen, batch_dims=1) + 1
    )


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
    if resized_mask_logits is mask_logits:
        # Decided at the model's resolution (post_processing_resolution
        # "model_output"): the same probabilities, not a second softmax.
        probs = low_res_probs
    else:
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
    num_slots = int(mask_logits.shape[-1])
    if 3.0 * pixel_confidence_threshold >= _TWO_MASKS_PER_PIXEL:
        # Per slot its candidate index (num_slots for the others), so that
        # the candidates' masks are read off the probabilities of all slots
        # without gathering K channels of them (the costliest step at stride 4).
        is_slot = tf.logical_and(
            tf.equal(
                candidate_slots[:, :, tf.newaxis],
                tf.range(num_slots, dtype=tf.int32)[tf.newaxis, tf.newaxis],
            ),
            valid[:, :, tf.newaxis],
        )
        positions = tf.range(tf.shape(candidate_slots)[1], dtype=tf.int32)
        # (Clipped: the minimum over no candidate is the int32 maximum.)
        slot_index = tf.minimum(
            tf.reduce_min(
                tf.where(is_slot, positions[tf.newaxis, :, tf.newaxis], num_slots),
                axis=1,
            ),
            num_slots,
        )
        rank_plus_one_map = _paste_at_most_two_per_pixel(
            tf.where(
                probs > pixel_confidence_threshold,
                slot_index[:, tf.newaxis, tf.newaxis, :],
                num_slots,
            ),
            candidate_ranks,
            valid,
            overlapping_threshold,
            num_slots,
        )
    else:
        # [B, H, W, K] probabilities of the candidates only.
        candidate_probs = tf.gather(probs, candidate_slots, axis=3, batch_dims=1)
        rank_plus_one_map = _paste_sequentially(
            candidate_probs > pixel_confidence_threshold,
            candidate_ranks,
            valid,
            overlapping_threshold,
            num_slots,
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
