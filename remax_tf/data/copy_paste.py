"""Panoptic copy-paste (kMaX-DeepLab, Yu et al., ECCV 2022, Sec. 4).

Segments of a second, independently augmented sample (drawn from a second
shuffled stream and scaled by ``panoptic_copy_paste_scale``) are pasted onto
the first. Semantics of DeepLab2 ``sample_generator._get_panoptic_copy_paste``:

* a random number k in [0, n] of the second sample's n distinct panoptic ids
  is kept, chosen uniformly; then per kind an option overrides the draw:
  "none" drops every id of that kind, "all" keeps every one, "random" keeps
  the draw. Kinds: thing classes (including crowd), stuff classes, void
  (``ignore * divisor``). Padding of the second sample (``ignore * divisor +
  1``, see :func:`paste_padding_value`) is never pasted;
* pasted thing instances get new ids ``divisor - 1 - id``, so with every
  instance id below ``divisor / 2`` (asserted) they never collide with the
  first sample's instances.
"""

from __future__ import annotations

from typing import Sequence
from typing import Tuple

import tensorflow as tf

PASTE_OPTIONS = ("random", "none", "all")


def paste_padding_value(ignore_label: int, label_divisor: int) -> int:
    """Label of the second sample's padding: void + 1, to tell it from void
    (DeepLab2 sample_generator.py)."""
    return ignore_label * label_divisor + 1


def check_option(name: str, value: str) -> str:
    if value not in PASTE_OPTIONS:
        raise ValueError(f"{name} must be one of {list(PASTE_OPTIONS)}, got {value!r}.")
    return value


def _isin(values: tf.Tensor, members: Sequence[int]) -> tf.Tensor:
    if not members:
        return tf.zeros_like(values, tf.bool)
    return tf.reduce_any(
        tf.equal(values[:, tf.newaxis], tf.constant(list(members), values.dtype)),
        axis=1,
    )


def _apply_option(keep: tf.Tensor, kind: tf.Tensor, option: str) -> tf.Tensor:
    if option == "none":
        return keep & ~kind
    if option == "all":
        return keep | kind
    return keep


def panoptic_copy_paste(
    image: tf.Tensor,
    label: tf.Tensor,
    paste_image: tf.Tensor,
    paste_label: tf.Tensor,
    *,
    label_divisor: int,
    ignore_label: int,
    thing_ids: Sequence[int],
    stuff_ids: Sequence[int],
    thing_option: str,
    stuff_option: str,
    void_option: str,
    seed: tf.Tensor,
    image_name: tf.Tensor | str = "",
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Pastes segments of (paste_image, paste_label) onto (image, label).

    Args:
      image, paste_image: [H, W, 3] float32, same size.
      label, paste_label: [H, W] int32 panoptic labels; ``paste_label`` padded
        with :func:`paste_padding_value`.
      label_divisor, ignore_label, thing_ids, stuff_ids: The dataset's labels.
      thing_option, stuff_option, void_option: "random" | "none" | "all".
      seed: [2] int seed.
      image_name: For the error message.

    Returns:
      The pasted image and label.
    """
    for name, value in (
        ("panoptic_copy_paste_thing_option", thing_option),
        ("panoptic_copy_paste_stuff_option", stuff_option),
        ("panoptic_copy_paste_void_option", void_option),
    ):
        check_option(name, value)
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    ids, index = tf.unique(tf.reshape(paste_label, [-1]))
    count = tf.size(ids)
    num_keep = tf.random.stateless_uniform(
        [], seed=seeds[0], maxval=count + 1, dtype=tf.int32
    )
    # A uniformly random subset of num_keep ids: the ranks of random keys.
    ranks = tf.argsort(tf.argsort(tf.random.stateless_uniform([count], seed=seeds[1])))
    keep = ranks < num_keep
    semantic = ids // label_divisor
    keep &= ~tf.equal(ids, paste_padding_value(ignore_label, label_divisor))
    keep = _apply_option(keep, _isin(semantic, thing_ids), thing_option)
    keep = _apply_option(keep, _isin(semantic, stuff_ids), stuff_option)
    keep = _apply_option(keep, tf.equal(ids, ignore_label * label_divisor), void_option)
    pasted = tf.reshape(tf.gather(keep, index), tf.shape(paste_label))

    instance = label % label_divisor
    paste_instance = paste_label % label_divisor
    half = label_divisor // 2
    check = tf.debugging.Assert(
        tf.logical_and(
            tf.reduce_max(instance) < half, tf.reduce_max(paste_instance) < half
        ),
        [
            tf.strings.format(
                "panoptic copy-paste on image {}: instance ids must stay below "
                "label_divisor / 2 = {} (max found {} and {} in the pasted image); "
                "remove panoptic_copy_paste or re-convert with a larger label divisor.",
                (
                    image_name,
                    half,
                    tf.reduce_max(instance),
                    tf.reduce_max(paste_instance),
                ),
            )
        ],
    )
    with tf.control_dependencies([check]):
        # New ids label_divisor - 1 - id for pasted instances; 0 stays 0.
        paste_instance = tf.where(
            paste_instance == 0, 0, label_divisor - 1 - paste_instance
        )
    paste_panoptic = (paste_label // label_divisor) * label_divisor + paste_instance
    image = tf.where(pasted[..., tf.newaxis], paste_image, image)
    label = tf.where(pasted, paste_panoptic, label)
    return image, label
