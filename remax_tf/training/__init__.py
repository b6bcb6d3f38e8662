"""Training, evaluation and export runs (``trainer/train.py`` is the CLI)."""

from remax_tf.training.errors import NonFiniteLossError
from remax_tf.training.errors import TrainingSetupError
from remax_tf.training.train_lib import MODES
from remax_tf.training.train_lib import experiment_dir
from remax_tf.training.train_lib import run_experiment

__all__ = [
    "MODES",
    "NonFiniteLossError",
    "TrainingSetupError",
    "experiment_dir",
    "run_experiment",
]
