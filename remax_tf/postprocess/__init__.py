"""Post-processing of kMaX / ReMaX predictions into panoptic outputs.

* :class:`PanopticPostProcessor` / :func:`build_post_processor`: mask logits and
  class logits -> panoptic, semantic and instance maps (mask-wise or pixel-wise,
  batched, graph mode, TFLite builtin ops only).
* :func:`undo_resize_and_pad`, :func:`undo_preprocessing`: back to the
  original image size.
* :func:`panoptic_segments`: HuggingFace-style segment lists.
"""

from remax_tf.postprocess.maskwise import maskwise_assignment
from remax_tf.postprocess.panoptic_merge import SlotAssignment
from remax_tf.postprocess.panoptic_merge import count_pixels_per_id
from remax_tf.postprocess.panoptic_merge import merge_to_panoptic
from remax_tf.postprocess.pixelwise import argmax_semantic
from remax_tf.postprocess.pixelwise import pixelwise_assignment
from remax_tf.postprocess.post_processor import POST_PROCESSING_METHODS
from remax_tf.postprocess.post_processor import PanopticPostProcessor
from remax_tf.postprocess.post_processor import build_post_processor
from remax_tf.postprocess.segments import panoptic_segments
from remax_tf.postprocess.undo_preprocessing import undo_preprocessing
from remax_tf.postprocess.undo_preprocessing import undo_resize_and_pad

__all__ = [
    "POST_PROCESSING_METHODS",
    "PanopticPostProcessor",
    "SlotAssignment",
    "argmax_semantic",
    "build_post_processor",
    "count_pixels_per_id",
    "maskwise_assignment",
    "merge_to_panoptic",
    "panoptic_segments",
    "pixelwise_assignment",
    "undo_preprocessing",
    "undo_resize_and_pad",
]
