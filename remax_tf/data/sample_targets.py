"""kMaX-DeepLab training targets from a panoptic label, per input sample.

The input pipeline adds them to each sample at crop resolution; the loss
turns them into its ground-truth masks at the model's output resolution in
``remax_tf.losses.targets``.

Semantics of DeepLab2 ``sample_generator.py`` (``thing_id_mask_annotations``
and ``increase_small_instance_weights``) and ``dataset_utils.py``:

* crowd = thing class with instance id 0; its pixels keep their class in the
  semantic target but belong to no thing mask;
* every non-crowd thing instance gets a thing id 0, 1, ... in order of first
  appearance in raster order (``tf.unique``), at most ``max_thing_id`` of
  them (asserted); stuff classes are represented by the semantic target;
* with a small-instance threshold, pixels of thing instances smaller than
  the threshold get ``small_instance_weight`` in the semantic loss weights.
"""

from __future__ import annotations

from typing import Dict
from typing import Sequence

import tensorflow as tf

from remax_tf import common


def _thing_class_table(thing_ids: Sequence[int], size: int) -> tf.Tensor:
    table = [False] * size
    for i in thing_ids:
        table[i] = True
    return tf.constant(table)


def crowd_and_thing_masks(
    label: tf.Tensor, label_divisor: int, thing_ids: Sequence[int]
):
    """(thing-class mask, crowd mask) of a panoptic label (any shape)."""
    semantic = label // label_divisor
    size = max(list(thing_ids) + [0]) + 1
    inside = (semantic >= 0) & (semantic < size)
    thing = inside & tf.gather(
        _thing_class_table(thing_ids, size), tf.clip_by_value(semantic, 0, size - 1)
    )
    crowd = thing & tf.equal(label % label_divisor, 0)
    return thing, crowd


def build_targets(
    label: tf.Tensor,
    *,
    label_divisor: int,
    ignore_label: int,
    thing_ids: Sequence[int],
    max_thing_id: int,
    small_instance_threshold: int = 0,
    small_instance_weight: float = 1.0,
    image_name: tf.Tensor | str = "",
) -> Dict[str, tf.Tensor]:
    """The ground-truth dict of one sample.

    Args:
      label: [H, W] int32 panoptic label.
      label_divisor, ignore_label, thing_ids: The dataset's encoding.
      max_thing_id: Length of the thing-class vector; more non-crowd thing
        instances than this is an error.
      small_instance_threshold: Instances with fewer pixels get
        ``small_instance_weight`` (0 disables).
      small_instance_weight: Semantic loss weight of small instances.
      image_name: Names the image in errors.

    Returns:
      ``GT_SEMANTIC_KEY`` [H, W] int32, ``GT_PANOPTIC_KEY`` [H, W] int32 (the
      label, crowd included), ``GT_IS_CROWD`` [H, W] int32 0/1,
      ``GT_THING_ID_MASK_KEY`` [H, W] int32 (-1 = no thing),
      ``GT_THING_ID_CLASS_KEY`` [max_thing_id] int32 (semantic id per thing
      id, -1 padding), ``SEMANTIC_LOSS_WEIGHT_KEY`` [H, W] float32.
    """
    label = tf.cast(label, tf.int32)
    _, crowd = crowd_and_thing_masks(label, label_divisor, thing_ids)
    void_value = ignore_label * label_divisor
    # DeepLab2 get_semantic_and_panoptic_label: crowd counts as void here.
    no_crowd = tf.where(crowd, void_value, label)
    ids, index = tf.unique(tf.reshape(no_crowd, [-1]))
    id_semantic = ids // label_divisor
    is_thing = (id_semantic != ignore_label) & (ids % label_divisor != 0)
    thing_index = tf.where(is_thing, tf.cumsum(tf.cast(is_thing, tf.int32)) - 1, -1)
    num_things = tf.reduce_sum(tf.cast(is_thing, tf.int32))
    check = tf.debugging.Assert(
        num_things <= max_thing_id,
        [
            tf.strings.format(
                "image {}: {} thing instances after augmentation, more than "
                "max_thing_id = {}; raise max_thing_id in the dataset options.",
                (image_name, num_things, max_thing_id),
            )
        ],
    )
    with tf.control_dependencies([check]):
        thing_classes = tf.boolean_mask(id_semantic, is_thing)
    thing_classes = tf.pad(
        thing_classes, [[0, max_thing_id - num_things]], constant_values=-1
    )
    thing_classes.set_shape([max_thing_id])
    shape = tf.shape(label)
    thing_mask = tf.reshape(tf.gather(thing_index, index), shape)

    weights = tf.ones(shape, tf.float32)
    if small_instance_threshold > 0 and small_instance_weight != 1.0:
        areas = tf.math.unsorted_segment_sum(tf.ones_like(index), index, tf.size(ids))
        small = is_thing & (areas < small_instance_threshold)
        weights = tf.where(
            tf.reshape(tf.gather(small, index), shape),
            tf.constant(small_instance_weight, tf.float32),
            weights,
        )
    return {
        common.GT_SEMANTIC_KEY: label // label_divisor,
        common.GT_PANOPTIC_KEY: label,
        common.GT_IS_CROWD: tf.cast(crowd, tf.int32),
        common.GT_THING_ID_MASK_KEY: thing_mask,
        common.GT_THING_ID_CLASS_KEY: thing_classes,
        common.SEMANTIC_LOSS_WEIGHT_KEY: weights,
    }
