"""Training, evaluation and export runs (``remax_tf.train`` is the CLI).

Names are imported lazily, so that ``remax-train --help`` (which reads
:data:`MODES`) does not wait for TensorFlow.
"""

import importlib

_EXPORTS = {
    "ConfigChangedError": "remax_tf.training.errors",
    "MODES": "remax_tf.training.modes",
    "NonFiniteLossError": "remax_tf.training.errors",
    "TrainingSetupError": "remax_tf.training.errors",
    "experiment_dir": "remax_tf.training.train_lib",
    "run_experiment": "remax_tf.training.train_lib",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'remax_tf.training' has no attribute {name!r}")
