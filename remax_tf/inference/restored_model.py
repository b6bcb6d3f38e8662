"""The inference model of a config with a training checkpoint's weights.

One function, :func:`build_restored_model`, for everything that runs a
checkpoint outside training: ``python -m remax_tf.export``
(:func:`remax_tf.export.exporter.export_checkpoint`) and
``remax-predict --model <checkpoint>``
(:class:`remax_tf.inference.checkpoint_predictor.CheckpointPredictor`). The
model is built from the config without its initial weights (the checkpoint
replaces them), called once at the evaluation crop size, and every inference
variable must be restored: a model that served some weights at their random
initial values would be silently wrong. Training-only items in the
checkpoint (``global_step``, optimizer slots, auxiliary heads) are skipped.
"""

from __future__ import annotations

import dataclasses
from typing import Optional
from typing import Tuple

import tensorflow as tf
import tf_keras

from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.export.saved_model import eval_preprocess_config
from remax_tf.export.saved_model import export_descriptor
from remax_tf.inference.model_files import ModelFileError
from remax_tf.inference.model_files import find_checkpoint
from remax_tf.inference.model_files import without_initial_weights
from remax_tf.model import build_model
from remax_tf.model.checkpoint_restore import RestoreReport
from remax_tf.model.checkpoint_restore import restore_items
from remax_tf.protos import config_pb2

# How many unrestored variables an error lists.
LISTED_VARIABLES = 8
# The fix of every mismatch; {verb}: what the command does with the checkpoint.
_FIX = (
    "Fix: {verb} the checkpoint with the --config_file (and --config_override "
    "flags) that trained it."
)


@dataclasses.dataclass(frozen=True)
class RestoredModel:
    """What :func:`build_restored_model` returns."""

    model: tf_keras.Model
    # The config without initial weights, as the model was built from it.
    config: config_pb2.ExperimentOptions
    descriptor: DatasetDescriptor
    crop_size: Tuple[int, int]
    checkpoint: str  # the ckpt-N prefix restored
    report: RestoreReport


def build_restored_model(
    config: config_pb2.ExperimentOptions,
    checkpoint: str,
    *,
    flag: str,
    verb: str,
    descriptor: Optional[DatasetDescriptor] = None,
) -> RestoredModel:
    """Builds ``config``'s inference model and restores ``checkpoint`` strictly.

    Args:
      config: The experiment config the checkpoint was trained with.
      checkpoint: A ``ckpt-N`` prefix, a directory with a ``checkpoint``
        file, or the trainer's model_dir (``<experiment_name>/`` is looked in).
      flag: How messages name the command-line flag (``--checkpoint``).
      verb: What the command does with it, for the fix in messages
        (``"export"``: "Fix: export the checkpoint with the --config_file ...").
      descriptor: The dataset; default the config's evaluation dataset
        (:func:`remax_tf.export.saved_model.export_descriptor`).

    Raises:
      ModelFileError: no checkpoint, one of another config's model, or one
        that lacks inference variables of this model.
    """
    fix = _FIX.format(verb=verb)
    prefix = find_checkpoint(checkpoint, config.experiment_name, flag)
    config = without_initial_weights(config)
    descriptor = descriptor or export_descriptor(config)
    crop_size = tuple(eval_preprocess_config(config, descriptor).crop_size)
    model = build_model(config, descriptor)
    model(tf.zeros([1, *crop_size, 3], tf.float32), training=False)
    report = restore_strictly(model, prefix, flag=flag, fix=fix)
    return RestoredModel(model, config, descriptor, crop_size, prefix, report)


def restore_strictly(
    model: tf_keras.Model, prefix: str, *, flag: str, fix: str
) -> RestoreReport:
    """Restores ``model.checkpoint_items`` from ``prefix``; every inference
    variable must get a value (training-only heads may be absent).

    Raises:
      ModelFileError: a checkpoint of another model (``fix`` appended), or one
        that lacks inference variables of ``model``.
    """
    try:
        report = restore_items(model.checkpoint_items, prefix, what=flag)
    except (FileNotFoundError, ValueError) as e:
        raise ModelFileError(f"{e} {fix}") from e
    inference = {v.name for v in model.inference_variables}
    missing = [name for name in report.missing if name in inference]
    if missing:
        raise ModelFileError(
            f"{flag} {prefix} lacks {len(missing)} inference variables of "
            f"the model built from the config, e.g. "
            f"{missing[:LISTED_VARIABLES]}; running it with them at "
            f"their random initial values would be wrong. {fix}"
        )
    return report
