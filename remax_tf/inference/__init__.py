"""Inference on image files: reading images, loading a model of any kind.

* :func:`load_image`, :func:`list_images` (``images``): upright 8-bit RGB
  from any file Pillow reads.
* :func:`load_predictor` (``predictor``): a training checkpoint (with its
  config), a SavedModel or a TFLite file -> a callable
  image -> panoptic maps at the image's size.

``python -m remax_tf.predict`` is the command line on top of them.
"""

from remax_tf.inference.base import Predictor
from remax_tf.inference.checkpoint_predictor import CheckpointPredictor
from remax_tf.inference.images import ImageReadError
from remax_tf.inference.images import list_images
from remax_tf.inference.images import load_image
from remax_tf.inference.model_files import MODEL_KINDS
from remax_tf.inference.model_files import ModelFileError
from remax_tf.inference.model_files import detect_model_kind
from remax_tf.inference.predictor import load_predictor
from remax_tf.inference.saved_model_predictor import SavedModelPredictor
from remax_tf.inference.tflite_predictor import TFLitePredictor

__all__ = [
    "CheckpointPredictor",
    "ImageReadError",
    "MODEL_KINDS",
    "ModelFileError",
    "Predictor",
    "SavedModelPredictor",
    "TFLitePredictor",
    "detect_model_kind",
    "list_images",
    "load_image",
    "load_predictor",
]
