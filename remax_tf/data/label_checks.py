"""In-graph checks that a decoded panoptic label fits its dataset.

The input pipeline never trains on garbage: a label whose semantic id the
dataset does not know (a TFRecord built for another dataset, or an instance
id >= label divisor that overflowed into the class id), a negative value, or a
stuff pixel carrying an instance id stops the pipeline with an error naming
the image.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def _membership_table(ids: Sequence[int]) -> tf.Tensor:
    size = max(ids) + 1 if ids else 1
    table = [False] * size
    for i in ids:
        table[i] = True
    return tf.constant(table)


def _is_member(values: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    size = tf.shape(table, out_type=values.dtype)[0]
    inside = (values >= 0) & (values < size)
    return inside & tf.gather(table, tf.clip_by_value(values, 0, size - 1))


def check_panoptic_label(
    label: tf.Tensor,
    *,
    dataset_name: str,
    label_divisor: int,
    ignore_label: int,
    class_ids: Sequence[int],
    thing_ids: Sequence[int],
    image_name: tf.Tensor | str,
) -> tf.Tensor:
    """Returns ``label`` once it has passed the checks (graph-mode asserts).

    Args:
      label: [H, W] int32 panoptic label, semantic * divisor + instance.
      dataset_name: For messages.
      label_divisor, ignore_label: The dataset's encoding.
      class_ids: Every real semantic id (void excluded).
      thing_ids: Semantic ids of thing classes.
      image_name: Names the image in the error.

    Raises:
      tf.errors.InvalidArgumentError (when run): the message names the image,
      the bad value and the likely fix.
    """
    flat = tf.reshape(label, [-1])
    semantic = flat // label_divisor
    instance = flat % label_divisor
    known = _is_member(semantic, _membership_table(list(class_ids) + [ignore_label]))
    stuff = _is_member(
        semantic, _membership_table([c for c in class_ids if c not in set(thing_ids)])
    )
    unknown = (flat < 0) | ~known
    stuff_instance = stuff & (instance != 0)

    def first(mask):
        return tf.gather(flat, tf.argmax(tf.cast(mask, tf.int32)))

    rebuild = (
        "Check `dataset:` in the config matches the TFRecords, or rebuild them with "
        "python -m remax_tf.data.build_<dataset>_data."
    )
    unknown_check = tf.debugging.Assert(
        ~tf.reduce_any(unknown),
        [
            tf.strings.format(
                "image {}: label value {} decodes to semantic id {} (label divisor "
                "{}), which dataset '{}' does not have (classes {}..{}, ignore {}): "
                "either the record was built for another dataset or an instance id "
                ">= the label divisor overflowed into the class id. " + rebuild,
                (
                    image_name,
                    first(unknown),
                    first(unknown) // label_divisor,
                    label_divisor,
                    dataset_name,
                    min(class_ids),
                    max(class_ids),
                    ignore_label,
                ),
            )
        ],
    )
    stuff_check = tf.debugging.Assert(
        ~tf.reduce_any(stuff_instance),
        [
            tf.strings.format(
                "image {}: label value {} gives stuff class {} the instance id {}; "
                "stuff pixels must have instance id 0 in dataset '{}'. " + rebuild,
                (
                    image_name,
                    first(stuff_instance),
                    first(stuff_instance) // label_divisor,
                    first(stuff_instance) % label_divisor,
                    dataset_name,
                ),
            )
        ],
    )
    with tf.control_dependencies([unknown_check, stuff_check]):
        return tf.identity(label)
