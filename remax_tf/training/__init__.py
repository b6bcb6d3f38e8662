"""Training, evaluation and export runs (``remax_tf.train`` is the CLI)."""

from remax_tf.training.errors import ConfigChangedError
from remax_tf.training.errors import NonFiniteLossError
from remax_tf.training.errors import TrainingSetupError
from remax_tf.training.modes import MODES
from remax_tf.training.train_lib import experiment_dir
from remax_tf.training.train_lib import run_experiment

__all__ = [
    "ConfigChangedError",
    "MODES",
    "NonFiniteLossError",
    "TrainingSetupError",
    "experiment_dir",
    "run_experiment",
]
