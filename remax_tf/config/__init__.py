"""Experiment configuration: DeepLab2-compatible textprotos.

from remax_tf.config import load_config
config = load_config('configs/demo/shapes_remax.textproto',
                     overrides=['train_dataset_options.batch_size=4'])
"""

from remax_tf.config.errors import ConfigError
from remax_tf.config.loader import apply_override
from remax_tf.config.loader import load_config
from remax_tf.config.loader import substitute_placeholders
from remax_tf.config.validation import validate_config

__all__ = [
    "ConfigError",
    "apply_override",
    "load_config",
    "substitute_placeholders",
    "validate_config",
]
