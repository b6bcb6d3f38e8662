"""Inference on image files: reading images, loading a model of any kind.

* :func:`load_image`, :func:`list_images` (``images``): upright 8-bit RGB
  from any file Pillow reads.
* :func:`load_predictor` (``predictor``): a training checkpoint (with its
  config), a SavedModel or a TFLite file -> a callable
  image -> panoptic maps at the image's size.

``python -m remax_tf.predict`` is the command line on top of them. Names are
imported lazily so that ``--help`` and argument errors do not wait for
TensorFlow.
"""

import importlib

_EXPORTS = {
    "ImageReadError": "remax_tf.inference.images",
    "list_images": "remax_tf.inference.images",
    "load_image": "remax_tf.inference.images",
    "MODEL_KINDS": "remax_tf.inference.model_files",
    "ModelFileError": "remax_tf.inference.model_files",
    "detect_model_kind": "remax_tf.inference.model_files",
    "Predictor": "remax_tf.inference.base",
    "load_predictor": "remax_tf.inference.predictor",
    "CheckpointPredictor": "remax_tf.inference.checkpoint_predictor",
    "SavedModelPredictor": "remax_tf.inference.saved_model_predictor",
    "TFLitePredictor": "remax_tf.inference.tflite_predictor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'remax_tf.inference' has no attribute {name!r}")
