"""Kept for imports of the old path: see :mod:`remax_tf.json_io`."""

from remax_tf.json_io import write_json_atomic

__all__ = ["write_json_atomic"]
