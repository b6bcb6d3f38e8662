"""Turning a per-pixel slot assignment into a DeepLab2 panoptic map.

Both post-processings (mask-wise and pixel-wise) end in a
:class:`SlotAssignment`: for every pixel, the mask slot it belongs to, that
slot's class and whether the pixel is confidently covered. This module merges
it into ``semantic * label_divisor + instance`` maps, dropping segments smaller
than the area limits, with the rules of DeepLab2's
``model/post_processor/max_deeplab.py`` (``_merge_mask_id_and_semantic_maps``):

* thing pixels keep the slot id (``mask_id_plus_one``) as instance id;
* stuff pixels get instance 0, so all slots of one stuff class fuse into one
  segment;
* a thing segment is kept when its slot covers at least ``thing_area_limit``
  pixels; a stuff segment when its class covers at least ``stuff_area_limit``
  pixels; everything else becomes ``ignore_label * label_divisor``.

Pixel counting uses :func:`count_pixels_per_id` (``unsorted_segment_sum`` over
a fixed number of bins) rather than ``tf.math.bincount``, whose
``DenseBincount`` op is not a TFLite builtin (docs/export.md, "Ops").
"""

from __future__ import annotations

from typing import NamedTuple
from typing import Optional
from typing import Sequence

import tensorflow as tf


class SlotAssignment(NamedTuple):
    """Per-pixel outcome of a post-processing, all [B, H, W].

    Attributes:
      mask_id_plus_one: int32, 1 + the slot (or slot rank, for mask-wise) each
        pixel is assigned to; DeepLab2's ``instance_pred``. Pixels outside
        ``confident`` carry an arbitrary id.
      class_index: int32, the class of that slot in the model's thing-then-stuff
        order (index into ``thing_stuff_class_ids``).
      confident: bool, pixels that belong to a kept segment.
      instance_score: float32, DeepLab2's ``instance_scores`` map.
      semantic_score: float32, class confidence of the assigned slot
        (DeepLab2's ``semantic_scores``).
    """

    mask_id_plus_one: tf.Tensor
    class_index: tf.Tensor
    confident: tf.Tensor
    instance_score: tf.Tensor
    semantic_score: tf.Tensor


def count_pixels_per_id(
    id_map: tf.Tensor, num_ids: int, pixel_weights: Optional[tf.Tensor] = None
) -> tf.Tensor:
    """Per pixel, how many pixels of its own image share its id.

    Args:
      id_map: [B, H, W] int32 ids in [0, num_ids).
      num_ids: Static number of bins per image.
      pixel_weights: Optional [H, W] int32: how many pixels each one stands
        for (a map to be upsampled, :func:`nearest_pixel_weights`); 1 if None.

    Returns:
      [B, H, W] int32 counts.
    """
    shape = tf.shape(id_map)
    batch = shape[0]
    flat = tf.reshape(id_map, [batch, -1])
    # One bin range per image so a single segment sum serves the whole batch.
    offsets = tf.range(batch, dtype=tf.int32)[:, None] * num_ids
    bins = flat + offsets
    if pixel_weights is None:
        weights = tf.ones_like(bins)
    else:
        weights = tf.broadcast_to(tf.reshape(pixel_weights, [1, -1]), tf.shape(bins))
    counts = tf.math.unsorted_segment_sum(weights, bins, num_segments=batch * num_ids)
    per_pixel = tf.gather(counts, bins)
    return tf.reshape(per_pixel, shape)


def merge_to_panoptic(
    assignment: SlotAssignment,
    thing_stuff_class_ids: Sequence[int],
    num_thing_classes: int,
    ignore_label: int,
    label_divisor: int,
    num_mask_slots: int,
    thing_area_limit: int = 0,
    stuff_area_limit: int = 0,
    pixel_weights: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """Builds the panoptic map ``semantic * label_divisor + instance``.

    Args:
      assignment: The per-pixel slot assignment.
      thing_stuff_class_ids: Dataset semantic id of each class index.
      num_thing_classes: Class indices below this are things.
      ignore_label: Semantic id written on pixels that belong to no segment
        (the dataset's void id; DeepLab2's post-processor calls it
        ``void_label``).
      label_divisor: Panoptic label divisor of the dataset.
      num_mask_slots: NQ; ``mask_id_plus_one`` lies in [1, NQ].
      thing_area_limit: Minimum pixel count of a thing segment; 0 keeps all.
      stuff_area_limit: Minimum pixel count of a stuff class; 0 keeps all.
      pixel_weights: Optional [H, W] int32, the pixels each pixel stands for
        in the area counts (a map merged before its nearest upsampling
        counts the upsampled pixels: the same segments survive).

    Returns:
      [B, H, W] int32 panoptic map.
    """
    class_ids = tf.constant(list(thing_stuff_class_ids), tf.int32)
    semantic = tf.gather(class_ids, assignment.class_index)
    is_thing = assignment.class_index < num_thing_classes
    thing = tf.logical_and(assignment.confident, is_thing)
    stuff = tf.logical_and(assignment.confident, tf.logical_not(is_thing))
    zeros = tf.zeros_like(semantic)

    thing_ids = tf.where(thing, assignment.mask_id_plus_one, zeros)
    if thing_area_limit > 0:
        # max_deeplab.py _filter_by_count: counted per slot over thing pixels,
        # kept when count > limit - 0.5, i.e. count >= limit.
        counts = count_pixels_per_id(thing_ids, num_mask_slots + 1, pixel_weights)
        thing = tf.logical_and(thing, counts >= thing_area_limit)
        thing_ids = tf.where(thing, thing_ids, zeros)
    if stuff_area_limit > 0:
        # Stuff is counted per semantic class (all its slots fused), +1 so that
        # non-stuff pixels fall in bin 0.
        stuff_bins = tf.where(stuff, semantic + 1, zeros)
        counts = count_pixels_per_id(
            stuff_bins, max(thing_stuff_class_ids) + 2, pixel_weights
        )
        stuff = tf.logical_and(stuff, counts >= stuff_area_limit)

    kept = tf.logical_or(thing, stuff)
    semantic = tf.where(kept, semantic, tf.fill(tf.shape(semantic), ignore_label))
    return semantic * label_divisor + thing_ids
