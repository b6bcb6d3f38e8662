"""What every checkpoint restore of remax_tf shares: the :class:`RestoreReport`
it returns and :func:`resolve_checkpoint_prefix`.

Below both restore paths: :mod:`remax_tf.model.checkpoint_restore` (object
graph) and :mod:`remax_tf.model.deeplab2_mapping` (DeepLab2 names), which
the former dispatches to.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class RestoreReport:
    """What a partial restore did.

    Model variables are named by ``tf.Variable.name``; checkpoint variables
    by their object path (checkpoint key without ``/.ATTRIBUTES/...``).

    Attributes:
      checkpoint: The checkpoint prefix read.
      layout: ``'items'`` (named items under the root), ``'root'`` (the
        object is the root), or a caller's name for its layout.
      restored: Model variables given their checkpoint value.
      missing: Model variables the checkpoint does not have (initial values).
      excluded: Model variables left at their initial value because their
        checkpoint path matched an ``exclude`` pattern.
      unused: Checkpoint variables under the requested items that no model
        variable took (excluded ones not counted).
      absent_items: Requested item names the checkpoint does not hold.
      unbuilt_items: Requested items without variables (never called, e.g.
        training-only heads of an inference model); not restored.
      skipped: Checkpoint entries that are not model weights and were not
        read: optimizer slots and counters, ``global_step`` (listed for
        DeepLab2 checkpoints; remax_tf restores ignore them silently).
    """

    checkpoint: str
    layout: str
    restored: Tuple[str, ...]
    missing: Tuple[str, ...]
    unused: Tuple[str, ...]
    excluded: Tuple[str, ...] = ()
    absent_items: Tuple[str, ...] = ()
    unbuilt_items: Tuple[str, ...] = ()
    skipped: Tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [
            f"restored {len(self.restored)} variables",
            f"{len(self.missing)} missing from the checkpoint",
            f"{len(self.unused)} checkpoint variables unused",
        ]
        if self.excluded:
            parts.append(f"{len(self.excluded)} excluded (kept at init)")
        if self.absent_items:
            parts.append(f"items not in the checkpoint: {list(self.absent_items)}")
        if self.unbuilt_items:
            parts.append(f"unbuilt items skipped: {list(self.unbuilt_items)}")
        if self.skipped:
            parts.append(
                f"{len(self.skipped)} non-model entries skipped (optimizer, step)"
            )
        return f"{self.checkpoint} ({self.layout}): " + ", ".join(parts)


def resolve_checkpoint_prefix(path: str, what: str = "checkpoint") -> str:
    """A checkpoint prefix from a prefix or a directory (its latest checkpoint).

    Raises:
      FileNotFoundError: naming ``what`` and ``path`` when there is none.
    """
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"{what} directory {path!r} holds no checkpoint (no 'checkpoint' "
                "state file); pass a checkpoint prefix such as DIR/ckpt-1000 instead."
            )
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(
            f"{what} {path!r} is not a TF2 checkpoint prefix: {path}.index does "
            "not exist."
        )
    return path
