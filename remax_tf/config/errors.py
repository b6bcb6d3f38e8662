"""The one exception type of configuration problems."""

from remax_tf.errors import RemaxError


class ConfigError(RemaxError, ValueError):
    """A config file, override or combination of fields is invalid.

    The message names the file (and line) or the field, the offending value and
    how to fix it.
    """
