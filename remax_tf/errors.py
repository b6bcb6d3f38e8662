"""The one base class of failures a user can fix.

Every expected failure (a bad config, a missing or corrupt file, an output
path that cannot be written, labels that do not fit the config) raises a
subclass of :class:`RemaxError` whose message names the culprit (file, line,
field, value) and the fix. The command-line entry points print such an error
as one ``error: ...`` line and exit with status 1
(:func:`remax_tf.cli.report_errors`); any other exception is a bug and keeps
its traceback. This module imports nothing, so every layer can use it.
"""

from __future__ import annotations


class RemaxError(Exception):
    """An expected failure; the message says what is wrong and how to fix it."""


class DataError(RemaxError, ValueError):
    """Training or evaluation data that cannot be used (a corrupt TFRecord,
    labels outside the config's classes); the message names the file."""


class OutputPathError(RemaxError, OSError):
    """An output file or folder cannot be created where the user asked."""
