"""What each mask slot predicts: its class, its confidence, its mask logits.

Shared by the mask-wise and pixel-wise post-processings, following DeepLab2's
``model/post_processor/max_deeplab.py``.
"""

from __future__ import annotations

from typing import Sequence
from typing import Tuple

import tensorflow as tf


def class_predictions(class_logits: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Class index and confidence of every slot.

    The softmax runs over all NC + 1 outputs, void included; the void column is
    then dropped, so a slot's confidence is its best real-class probability
    (max_deeplab.py ``_get_mask_id_and_semantic_maps``).

    Args:
      class_logits: [B, NQ, NC + 1], void last.

    Returns:
      (class_index [B, NQ] int32 in [0, NC), confidence [B, NQ] float32).
    """
    probs = tf.nn.softmax(class_logits, axis=-1)[..., :-1]
    return tf.argmax(probs, axis=-1, output_type=tf.int32), tf.reduce_max(
        probs, axis=-1
    )


def resize_mask_logits(mask_logits: tf.Tensor, output_size: Sequence[int]) -> tf.Tensor:
    """Bilinear upsampling of [B, h, w, NQ] logits to ``output_size``.

    DeepLab2 resizes the stride-4 logits to the (padded) input size with
    ``align_corners=True`` before any thresholding; with crops of size 4k+1
    the corners of both grids coincide.
    """
    return tf.raw_ops.ResizeBilinear(
        images=tf.cast(mask_logits, tf.float32),
        size=tf.constant([int(output_size[0]), int(output_size[1])], tf.int32),
        align_corners=True,
        half_pixel_centers=False,
    )
