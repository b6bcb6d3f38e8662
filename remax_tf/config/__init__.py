"""Experiment configuration: DeepLab2-compatible textprotos.

from remax_tf.config import load_config
config = load_config('configs/demo/shapes_remax.textproto',
                     overrides=['train_dataset_options.batch_size=4'])

``configs/<dataset>/<name>.textproto`` also names the configs shipped in the
package (:mod:`remax_tf.config.shipped`); :func:`small_crop_overrides` scales
any config down to try it.
"""

from remax_tf.config.errors import ConfigError
from remax_tf.config.loader import apply_override
from remax_tf.config.loader import load_config
from remax_tf.config.loader import placeholder_names
from remax_tf.config.loader import substitute_placeholders
from remax_tf.config.scaled_down import small_crop_overrides
from remax_tf.config.validation import validate_config

__all__ = [
    "ConfigError",
    "apply_override",
    "load_config",
    "placeholder_names",
    "small_crop_overrides",
    "substitute_placeholders",
    "validate_config",
]
