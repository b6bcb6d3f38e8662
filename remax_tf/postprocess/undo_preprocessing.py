"""Undoing the evaluation preprocessing: crop the padding, resize back.

Evaluation resizes an image (longer side to the crop size) and pads it at the
bottom and right (DeepLab2's ``data/preprocessing/input_preprocessing.py``).
Predictions at the padded size go back to the original image by cropping the
resized region and resizing with nearest neighbour and ``align_corners=True``,
as DeepLab2's ``model/utils.py`` ``undo_preprocessing`` does for label-like
maps.
"""

from __future__ import annotations

from typing import Dict
from typing import Mapping

import tensorflow as tf

from remax_tf import common
from remax_tf.postprocess.slot_predictions import apply_stacked

# Prediction maps that are resized back (all label- or score-like: nearest).
MAP_KEYS = (
    common.PRED_PANOPTIC_KEY,
    common.PRED_SEMANTIC_KEY,
    common.PRED_INSTANCE_KEY,
    common.PRED_INSTANCE_SCORES_KEY,
    common.PRED_SEMANTIC_SCORES_KEY,
)


def undo_is_identity(map_size, resized_size, original_size) -> bool:
    """Whether the undo provably changes nothing: the map size, the resized
    size and the original size are all known while tracing and equal (an
    image already at the crop size, as in a fixed-size TFLite export). A
    nearest-neighbour resize to the same size is then a copy, so skipping it
    gives the same maps, bit for bit, without the work."""
    sizes = [
        tf.get_static_value(tf.convert_to_tensor(s))
        for s in (resized_size, original_size)
    ]
    map_size = [None if d is None else int(d) for d in map_size]
    if None in map_size or any(size is None for size in sizes):
        return False
    return all([int(v) for v in size] == map_size for size in sizes)


def undo_resize_and_pad(
    maps: tf.Tensor, resized_size: tf.Tensor, original_size: tf.Tensor
) -> tf.Tensor:
    """Crops ``maps`` to the resized region and resizes it to the original size.

    Args:
      maps: [B, H, W] or [B, H, W, C] maps at the padded input size (any
        dtype nearest-neighbour resizing supports: integer or float).
      resized_size: (height, width) of the image after resizing, before
        padding; shared by the batch (DeepLab2 evaluates with batch 1).
      original_size: (height, width) of the original image.

    Returns:
      The maps at ``original_size``, same dtype and rank.
    """
    maps = tf.convert_to_tensor(maps)
    rank = maps.shape.rank
    if rank not in (3, 4):
        raise ValueError(f"maps must be [B, H, W] or [B, H, W, C], got {maps.shape}.")
    if undo_is_identity(maps.shape[1:3], resized_size, original_size):
        return maps
    resized_size = tf.cast(tf.convert_to_tensor(resized_size), tf.int32)
    original_size = tf.cast(tf.convert_to_tensor(original_size), tf.int32)

    def undo():
        images = maps if rank == 4 else maps[..., None]
        images = images[:, : resized_size[0], : resized_size[1], :]
        images = tf.raw_ops.ResizeNearestNeighbor(
            images=images,
            size=original_size,
            align_corners=True,
            half_pixel_centers=False,
        )
        return images if rank == 4 else images[..., 0]

    static = [tf.get_static_value(size) for size in (resized_size, original_size)]
    if (
        maps.shape[1:3].is_fully_defined()
        and any(size is None for size in static)
        and not tf.executing_eagerly()
    ):
        # Sizes known only when the graph runs (the SavedModel's any-size
        # signature): skip the copy then, as undo_is_identity does while
        # tracing, for images that arrive at the crop size.
        map_size = tf.constant(maps.shape[1:3].as_list(), tf.int32)
        same = tf.reduce_all(
            tf.logical_and(
                tf.equal(resized_size, map_size), tf.equal(original_size, map_size)
            )
        )
        return tf.cond(same, lambda: tf.identity(maps), undo)
    return undo()


def undo_preprocessing(
    predictions: Mapping[str, tf.Tensor],
    resized_size: tf.Tensor,
    original_size: tf.Tensor,
) -> Dict[str, tf.Tensor]:
    """Applies :func:`undo_resize_and_pad` to the map keys of a prediction dict.

    Other keys (e.g. raw logits) are passed through unchanged. Maps of the
    same dtype and shape ``[B, H, W]`` are undone together, stacked as the
    channels of one resize (nearest neighbour copies values, so the result
    is the same; in TFLite one multi-channel resize costs about half of five
    single-channel ones: docs/benchmarks.md, "Latency split").
    """

    def undo(maps):
        return undo_resize_and_pad(maps, resized_size, original_size)

    maps = {
        key: tf.convert_to_tensor(value)
        for key, value in predictions.items()
        if key in MAP_KEYS
    }
    undone = apply_stacked(
        {key: value for key, value in maps.items() if value.shape.rank == 3}, undo
    )
    return {
        key: undone[key] if key in undone else undo(maps[key]) if key in maps else value
        for key, value in predictions.items()
    }
