"""Checkpoint and model_dir handling with errors that say what to do."""

from __future__ import annotations

import contextlib
import os
from typing import Optional
import uuid

from absl import logging
import tensorflow as tf

from remax_tf.model.checkpoint_restore import CLASS_HEAD_PATTERNS
from remax_tf.model.checkpoint_restore import restore_items
from remax_tf.training.errors import TrainingSetupError


def check_model_dir(path: str) -> None:
    """Creates ``path`` and proves it writable, or raises TrainingSetupError."""
    try:
        tf.io.gfile.makedirs(path)
        probe = os.path.join(path, f".write_probe_{uuid.uuid4().hex}")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        raise TrainingSetupError(
            f"model_dir {path!r} is not writable ({getattr(e, 'message', e)}). Fix: pass a "
            "--model_dir you can write to."
        ) from e


def worker_scratch_dir(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """Non-chief workers of a multi-worker run write their (discarded)
    checkpoints here: every worker must take part in saving, only the chief's
    copy is kept."""
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def restore_initial_checkpoint(config, model) -> None:
    """Partial restore of ``model_options.initial_checkpoint`` (if set) into
    the model's checkpoint items, with a report of what matched.

    With ``restore_semantic_last_layer_from_initial_checkpoint: false`` (a
    checkpoint trained on other classes) every class-dependent layer stays at
    its initial value.
    """
    path = config.model_options.initial_checkpoint
    if not path:
        return
    options = config.model_options
    keep_classes = options.restore_semantic_last_layer_from_initial_checkpoint
    exclude = () if keep_classes else CLASS_HEAD_PATTERNS
    report = restore_items(model.checkpoint_items, path, exclude=exclude)
    logging.info("initial_checkpoint: %s", report.summary())
    print(f"[train] initial_checkpoint: {report.summary()}", flush=True)


@contextlib.contextmanager
def explain_restore_errors(checkpoint_dir: str, config):
    """Turns a failed restore of model_dir's checkpoint into a clear error."""
    try:
        yield
    except (
        ValueError,
        AssertionError,
        tf.errors.InvalidArgumentError,
        tf.errors.NotFoundError,
    ) as e:
        latest = tf.train.latest_checkpoint(checkpoint_dir)
        if latest is None:
            raise
        raise TrainingSetupError(
            f"the checkpoint {latest} in model_dir does not match the model of this config "
            f"(experiment {config.experiment_name!r}): {str(e).splitlines()[0][:300]}. Fix: use "
            "a new --model_dir (or experiment_name), or the config that wrote that checkpoint."
        ) from e


@contextlib.contextmanager
def explain_empty_dataset(config):
    """An input that yields nothing becomes an error naming the file pattern."""
    try:
        yield
    except (tf.errors.OutOfRangeError, StopIteration) as e:
        patterns = list(config.train_dataset_options.file_pattern) + list(
            config.eval_dataset_options.file_pattern
        )
        raise TrainingSetupError(
            f"the dataset ran out of examples (file_pattern {patterns}). Fix: check that the "
            "TFRecords hold examples (empty shards?), and that eval_steps does not exceed "
            "the validation set size."
        ) from e


class PartialRestoreCheckpointManager(tf.train.CheckpointManager):
    """A CheckpointManager whose restore accepts a partial match.

    Evaluation and export build only the inference model and no optimiser, so
    the optimiser slots and training-only heads of a training checkpoint are
    expected to stay unused (shape mismatches still raise).
    """

    def __init__(self, *args, restore_path: Optional[str] = None, **kwargs):
        """``restore_path``: the checkpoint to restore instead of the latest
        (``--mode eval`` of a given ``ckpt-N``)."""
        super().__init__(*args, **kwargs)
        self._restore_path = restore_path

    def restore_or_initialize(self):
        path = self._restore_path or self.latest_checkpoint
        if path is None:
            return super().restore_or_initialize()
        self.checkpoint.restore(path).expect_partial()
        return path
