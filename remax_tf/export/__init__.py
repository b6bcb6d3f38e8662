"""Export: SavedModel serving and TFLite files (docs/export.md).

* :func:`export_from_config` (trainer ``--mode export``, ``export_at_end``)
  and :func:`export_checkpoint` (``python -m remax_tf.export``);
* :class:`ServingModule` / :func:`build_serving_module`: the serving graph
  (uint8 image -> panoptic maps at the input size);
* :func:`convert_to_tflite`: fixed-size TFLite conversion with a
  quantisation switch (``none``, ``fp16``, ``dynamic``, ``int8``).

The names load on first use: ``remax-export`` and ``python -m
remax_tf.export`` import this package before ``export/__main__.py`` runs, and
that module must quiet TensorFlow's start-up logs (``cli.quiet_tensorflow``)
before TensorFlow is imported.
"""

import importlib

_EXPORTS = {
    "export_from_config": "remax_tf.export.exporter",
    "export_checkpoint": "remax_tf.export.exporter",
    "FORMATS": "remax_tf.export.options",
    "ServingModule": "remax_tf.export.saved_model",
    "build_serving_module": "remax_tf.export.saved_model",
    "export_saved_model": "remax_tf.export.saved_model",
    "convert_to_tflite": "remax_tf.export.tflite",
    "QUANTIZE_MODES": "remax_tf.export.options",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'remax_tf.export' has no attribute {name!r}")
