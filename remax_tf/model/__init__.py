"""kMaX-DeepLab models with ReMaX's training-only relaxations.

``build_model(config)`` is the entry point, ``KMaXDeepLab`` the model class
and ``ReMask`` the training-only relaxation applied inside the loss. They are
imported lazily so that the TensorFlow-free parts below this package (the
backbone registry read by the config validator) stay importable without
TensorFlow and without import cycles.
"""

import importlib

_EXPORTS = {
    "build_model": "remax_tf.model.builder",
    "KMaXDeepLab": "remax_tf.model.kmax_deeplab",
    "ReMask": "remax_tf.model.remask",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'remax_tf.model' has no attribute {name!r}")
