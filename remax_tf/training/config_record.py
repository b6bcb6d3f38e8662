"""A model_dir remembers the config it was trained with.

A training run (``--mode train`` or ``train_and_eval``) writes its config to
``<model_dir>/<experiment_name>/config.textproto`` (atomically: a temporary
file renamed) before its first step. When a later run resumes from that
model_dir's checkpoint, its config is compared with the recorded one field by
field (protobuf defaults applied, so an explicit default equals an unset
field):

* the same settings resume as before;
* differences in :data:`RESUMABLE_FIELDS` only (bookkeeping, evaluation, data
  paths, the step budget) resume with one notice line per field, and the new
  config is recorded;
* any other difference (learning rate, schedule, seed, batch, crop, dataset,
  model, loss weights, ReMaX settings, augmentation, ...) stops the run
  before it builds anything, with :class:`ConfigChangedError` listing each
  field as ``field: recorded -> new``; ``--allow_config_change``
  (``run_experiment(..., allow_config_change=True)``) resumes anyway and
  records the new config, keeping the old one as
  ``config.until_step_<N>.textproto``.

A model_dir written before configs were recorded (a checkpoint but no
``config.textproto``) resumes as before, with a one-line notice.
"""

from __future__ import annotations

import os
from typing import List
from typing import Optional
from typing import Tuple
import uuid

from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message as pb_message
from google.protobuf import text_format
import tensorflow as tf

from remax_tf.protos import config_pb2
from remax_tf.training.errors import ConfigChangedError
from remax_tf.training.errors import TrainingSetupError

CONFIG_FILENAME = "config.textproto"
_HEADER = (
    "# The config this model_dir was trained with, recorded by remax_tf at the\n"
    "# start of training; a resumed run is compared with it.\n"
)

# Fields (and whole messages) that may differ when a run resumes, because
# they do not change what the resumed steps compute: the step budget
# (extending a run; a poly or cosine schedule then follows the new total),
# checkpoint / summary / loop bookkeeping, evaluation, where the training data
# lives (moved files; the labels are still checked against the dataset), and
# what only initialises a run that has not started (initial_checkpoint).
RESUMABLE_FIELDS = (
    "experiment_name",
    "trainer_options.solver_options.training_number_of_steps",
    "trainer_options.num_checkpoints_to_keep",
    "trainer_options.save_checkpoints_steps",
    "trainer_options.save_summaries_steps",
    "trainer_options.steps_per_loop",
    "trainer_options.num_summary_images",
    "trainer_options.export_at_end",
    "trainer_options.stop_on_nonfinite_loss",
    "train_dataset_options.file_pattern",
    "train_dataset_options.prefetch_size",
    "model_options.initial_checkpoint",
    "model_options.restore_semantic_last_layer_from_initial_checkpoint",
    "model_options.restore_instance_last_layer_from_initial_checkpoint",
    "evaluator_options",
    "eval_dataset_options",
)

Change = Tuple[str, str, str]  # (field, recorded value, new value)


def _format(field: pb_descriptor.FieldDescriptor, value) -> str:
    if field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE:
        text = text_format.MessageToString(value, as_one_line=True)
        return "{" + (text[:117] + "..." if len(text) > 120 else text) + "}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _format_list(field: pb_descriptor.FieldDescriptor, values) -> str:
    return "[" + ", ".join(_format(field, v) for v in values) + "]"


def config_changes(
    old: pb_message.Message, new: pb_message.Message, prefix: str = ""
) -> List[Change]:
    """Every field whose value differs between ``old`` and ``new``."""
    changes: List[Change] = []
    for field in new.DESCRIPTOR.fields:
        path = prefix + field.name
        is_message = field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE
        if field.is_repeated:
            a, b = list(getattr(old, field.name)), list(getattr(new, field.name))
            if a != b:
                changes.append((path, _format_list(field, a), _format_list(field, b)))
        elif is_message:
            had, has = old.HasField(field.name), new.HasField(field.name)
            a, b = getattr(old, field.name), getattr(new, field.name)
            if had and has:
                changes += config_changes(a, b, path + ".")
            elif had != has:
                unset = "(unset)"
                changes.append(
                    (
                        path,
                        _format(field, a) if had else unset,
                        _format(field, b) if has else unset,
                    )
                )
        else:
            a, b = getattr(old, field.name), getattr(new, field.name)
            if a != b:
                changes.append((path, _format(field, a), _format(field, b)))
    return changes


def is_resumable(path: str) -> bool:
    """Whether ``path`` may change on resume (:data:`RESUMABLE_FIELDS`)."""
    return any(path == f or path.startswith(f + ".") for f in RESUMABLE_FIELDS)


def read_recorded_config(workdir: str) -> Optional[config_pb2.ExperimentOptions]:
    """The config recorded in ``workdir``, or None when there is none."""
    path = os.path.join(workdir, CONFIG_FILENAME)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    config = config_pb2.ExperimentOptions()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise TrainingSetupError(
            f"{path}: the recorded config of this model_dir cannot be read ({e}). "
            "Fix: restore the file, or delete it to resume without the check, or "
            "train into a fresh --model_dir."
        ) from e
    return config


def _step_of(checkpoint: str) -> int:
    return int(checkpoint.rsplit("-", 1)[1])


def check_resume(
    workdir: str,
    config: config_pb2.ExperimentOptions,
    *,
    allow_config_change: bool,
    mode: str,
) -> None:
    """Compares ``config`` with the config recorded in ``workdir`` when the
    run resumes from a checkpoint there (see the module docstring).

    Raises:
      ConfigChangedError: training-relevant fields differ and
        ``allow_config_change`` is false.
    """
    latest = tf.train.latest_checkpoint(workdir)
    if latest is None:
        return
    old = read_recorded_config(workdir)
    if old is None:
        print(
            f"[{mode}] note: {workdir} holds checkpoints but no recorded config "
            "(written before remax_tf recorded them); resuming without comparing "
            f"settings, and recording this run's config as {CONFIG_FILENAME}.",
            flush=True,
        )
        return
    changes = config_changes(old, config)
    blocked = [c for c in changes if not is_resumable(c[0])]
    if blocked and not allow_config_change:
        lines = "\n".join(f"  {field}: {a} -> {b}" for field, a, b in blocked)
        raise ConfigChangedError(
            f"model_dir {workdir} was trained (up to step {_step_of(latest)}) with "
            f"another config ({os.path.join(workdir, CONFIG_FILENAME)}); resuming "
            "would mix two settings in one run. These fields differ (recorded -> "
            f"this run):\n{lines}\nFix: pass --allow_config_change "
            "(run_experiment(..., allow_config_change=True)) to resume with the new "
            "settings (they are then recorded), or train into a fresh --model_dir "
            "(or experiment_name).",
            blocked,
        )
    for field, a, b in changes:
        print(f"[{mode}] note: {field} changed on resume: {a} -> {b}", flush=True)


def record_config(workdir: str, config: config_pb2.ExperimentOptions) -> str:
    """Writes ``config`` to ``workdir/config.textproto`` atomically; a
    different config recorded there before is kept as
    ``config.until_step_<N>.textproto`` (N: the latest checkpoint's step).
    Returns the path."""
    path = os.path.join(workdir, CONFIG_FILENAME)
    text = _HEADER + text_format.MessageToString(config)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            if f.read() == text:
                return path
        latest = tf.train.latest_checkpoint(workdir)
        if latest is not None:
            kept = os.path.join(
                workdir, f"config.until_step_{_step_of(latest)}.textproto"
            )
            tf.io.gfile.copy(path, kept, overwrite=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return path
