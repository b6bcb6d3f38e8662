"""The one exception type of configuration problems."""


class ConfigError(ValueError):
    """A config file, override or combination of fields is invalid.

    The message names the file (and line) or the field, the offending value and
    how to fix it.
    """
