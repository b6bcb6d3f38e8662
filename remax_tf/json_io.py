"""Atomic JSON writing: a reader never sees a half-written results file."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import numpy as np


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def write_json_atomic(path: str, data: Any, indent: int = 2) -> None:
    """Writes ``data`` as JSON to ``path`` via a temporary file and a rename.

    The file gets the usual permissions (0666 less the umask, like any file
    written with ``open``), not the 0600 of ``tempfile.mkstemp``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    while True:
        tmp_path = os.path.join(
            directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp"
        )
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=indent, default=_to_builtin)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
