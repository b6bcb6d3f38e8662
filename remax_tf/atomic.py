"""Output folders: checked before the work, written whole or not at all.

* :func:`check_output_dir`: refuses, before any work, an output folder that
  cannot be created (a regular file in the way, a read-only parent), naming
  the path and the culprit, as :class:`~remax_tf.errors.OutputPathError`.
* :func:`staged_output_dir`: the files are written into a temporary sibling
  folder (``.<name>.tmp-<pid>``, same parent, so the final rename stays on
  one file system) that replaces the output folder only when the block
  succeeds; on failure it is removed and the output folder is left as it
  was. A failed export or prediction run therefore never leaves a half
  model or a half set of predictions that looks real.

Remote paths (``gs://...``) have no atomic rename; they are written in place.
This module imports neither TensorFlow nor anything that does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Callable
from typing import Iterator
from typing import Sequence

from remax_tf.errors import OutputPathError


def is_remote(path: str) -> bool:
    """A path of a TensorFlow file system such as ``gs://``."""
    return "://" in path


def _first_existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists."""
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_output_dir(path: str, flag: str = "--output_dir") -> None:
    """Raises if ``path`` cannot be (or become) a writable folder.

    Raises:
      OutputPathError: naming ``path`` and what is in the way (a regular file
        at or above it, or a folder that is not writable).
    """
    if is_remote(path):
        return  # Checked by TensorFlow's file system when written.
    target = os.path.abspath(path)
    existing = _first_existing(target)
    if not os.path.isdir(existing):
        where = "is" if existing == target else "lies below"
        raise OutputPathError(
            f"{flag} {path} {where} the regular file {existing}, so no folder can "
            f"be created there. Fix: choose another {flag}, or move that file away."
        )
    # The first existing folder is where the new folders (or, for an
    # existing output folder, the temporary sibling) are created.
    writable = existing if existing != target else os.path.dirname(target)
    if not os.access(writable, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{flag} {path}: the folder {writable} is not writable. Fix: choose "
            f"another {flag}, or make {writable} writable."
        )


def _swap(new: str, path: str) -> None:
    """Renames ``new`` to ``path``; an existing ``path`` is removed after."""
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    old = os.path.join(
        os.path.dirname(path), f".{os.path.basename(path)}.old-{os.getpid()}"
    )
    _remove(old)
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    _remove(old)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def publish(
    staging: str,
    path: str,
    owned: Callable[[str], bool],
    last: Sequence[str] = (),
) -> None:
    """Puts the files of ``staging`` at ``path`` and removes ``staging``.

    A missing ``path``, or one holding only ``owned`` entries (the outputs of
    an earlier run), is replaced as a whole by one rename. Otherwise (the
    folder holds other files, which are left alone) its ``owned`` entries
    are removed and the staged entries moved in one by one, ``last`` (the
    file that marks a complete output) at the end.
    """
    if not os.path.isdir(path) or all(owned(name) for name in os.listdir(path)):
        _swap(staging, path)
        return
    staged = os.listdir(staging)
    for name in os.listdir(path):
        if owned(name) and name not in staged:
            _remove(os.path.join(path, name))
    order = [n for n in staged if n not in last] + [n for n in last if n in staged]
    for name in order:
        _swap(os.path.join(staging, name), os.path.join(path, name))
    shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_output_dir(
    path: str,
    owned: Callable[[str], bool],
    last: Sequence[str] = (),
    flag: str = "--output_dir",
) -> Iterator[str]:
    """Yields a temporary sibling folder of ``path`` to write into; it
    replaces ``path`` when the block succeeds (:func:`publish`) and is
    removed when it fails. Remote paths are yielded as they are.

    Raises:
      OutputPathError: ``path`` cannot be written (:func:`check_output_dir`).
    """
    if is_remote(path):
        yield path
        return
    check_output_dir(path, flag)
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if os.path.isdir(target) and not os.access(parent, os.W_OK | os.X_OK):
        # No sibling can be made (say, --output_dir . in a read-only parent):
        # staged inside, then moved in entry by entry (:func:`publish`).
        parent = target
    staging = os.path.join(parent, f".{os.path.basename(target)}.tmp-{os.getpid()}")
    _remove(staging)  # A leftover of a killed run with the same process id.
    os.makedirs(staging)
    try:
        yield staging
        publish(staging, target, owned, last)
    finally:
        _remove(staging)


def check_output_file(path: str, flag: str) -> None:
    """Raises if the file ``path`` cannot be written: a folder at ``path``,
    or a folder above it that cannot be created or written.

    Raises:
      OutputPathError: naming ``path`` and what is in the way.
    """
    if is_remote(path):
        return
    if os.path.isdir(path):
        raise OutputPathError(
            f"{flag} {path} is a folder; a file is written there. Fix: name a "
            "file, e.g. inside that folder."
        )
    check_output_dir(os.path.dirname(os.path.abspath(path)) or ".", flag)
