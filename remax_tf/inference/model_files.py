"""What ``--model`` points at: a checkpoint, a SavedModel or a TFLite file.

* a training checkpoint: a ``ckpt-N`` prefix, a directory with a
  ``checkpoint`` state file (the latest ``ckpt-N`` is used), or the trainer's
  ``--model_dir`` whose ``<experiment_name>/`` holds them;
* a SavedModel: a directory with ``saved_model.pb``, or an export directory
  holding ``saved_model/`` (what ``remax_tf.export`` writes);
* a TFLite flatbuffer: a file ending in ``.tflite``.

Exported models carry no config, so the dataset (class names, colours,
original category ids) and the preprocessing come from the export's metadata
file (``metadata.json``) found next to them, or from ``--dataset``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from typing import Dict
from typing import Optional

import tensorflow as tf

from remax_tf.data import datasets
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.errors import RemaxError
from remax_tf.protos import config_pb2

CHECKPOINT = "checkpoint"
SAVED_MODEL = "saved_model"
TFLITE = "tflite"
MODEL_KINDS = (CHECKPOINT, SAVED_MODEL, TFLITE)

# tf.train.CheckpointManager's state file and TF's SavedModel graph file.
_CHECKPOINT_STATE = "checkpoint"
_SAVED_MODEL_PB = "saved_model.pb"
# remax_tf.export layout: <export dir>/saved_model/ next to <export dir>/metadata.json.
_EXPORT_SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "metadata.json"
# Keys of the export metadata read here (see docs/inference.md).
METADATA_DESCRIPTOR = "descriptor"
METADATA_DATASET = "dataset"


class ModelFileError(RemaxError, ValueError):
    """``--model`` (or its metadata) cannot be used; the message says why."""


def _has_checkpoints(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, _CHECKPOINT_STATE))


def detect_model_kind(path: str) -> str:
    """One of :data:`MODEL_KINDS`, from the path alone.

    Raises:
      ModelFileError: nothing usable at ``path``, saying what was looked for.
    """
    if path.endswith(".tflite"):
        if not os.path.isfile(path):
            raise ModelFileError(f"--model {path}: no such TFLite file.")
        return TFLITE
    if os.path.isfile(path + ".index"):
        return CHECKPOINT
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, _SAVED_MODEL_PB)) or os.path.isfile(
            os.path.join(path, _EXPORT_SAVED_MODEL_DIR, _SAVED_MODEL_PB)
        ):
            return SAVED_MODEL
        if _has_checkpoints(path) or any(
            _has_checkpoints(os.path.join(path, name))
            for name in os.listdir(path)
            if os.path.isdir(os.path.join(path, name))
        ):
            return CHECKPOINT
    raise ModelFileError(
        f"--model {path}: found no model there. Pass a training checkpoint "
        "(a ckpt-N prefix, the directory holding the 'checkpoint' file, or the "
        "trainer's --model_dir), a SavedModel directory (with saved_model.pb, or "
        "an export directory with saved_model/), or a .tflite file."
    )


def find_checkpoint(path: str, experiment_name: str = "", what: str = "--model") -> str:
    """The checkpoint prefix a training output stands for.

    The one resolution of every command that takes a training output
    (``remax-predict --model``, ``remax-export --checkpoint``, the trainer's
    ``--model_dir`` with ``--mode eval|export``). Accepted, in this order:

    1. a ``ckpt-N`` prefix (``path.index`` exists);
    2. a directory holding a ``checkpoint`` state file (its latest ``ckpt-N``);
    3. the trainer's ``--model_dir``: ``path/<experiment_name>/`` holds them.

    Args:
      path: A prefix, a checkpoint directory, or the trainer's model_dir.
      experiment_name: The config's; the trainer writes to
        ``model_dir/<experiment_name>/``.
      what: How messages name the flag.

    Raises:
      ModelFileError: no checkpoint there, naming the places tried.
    """
    if os.path.isfile(path + ".index"):
        return path
    tried = [path]
    candidates = [path]
    if experiment_name:
        candidates.append(os.path.join(path, experiment_name))
        tried.append(candidates[-1])
    for directory in candidates:
        if _has_checkpoints(directory):
            latest = tf.train.latest_checkpoint(directory)
            if latest is not None:
                return latest
    raise ModelFileError(
        f"{what} {path}: no checkpoint found (looked for a 'checkpoint' state file "
        f"naming an existing ckpt-N in {tried}). Fix: train first, or pass the "
        "trainer's --model_dir, the directory of the run (model_dir/<experiment_name>) "
        "or a ckpt-N prefix."
    )


def without_initial_weights(
    config: config_pb2.ExperimentOptions,
) -> config_pb2.ExperimentOptions:
    """A copy of ``config`` without the initial weights: a checkpoint being
    restored replaces them, so building the model must not read (or need)
    the backbone's or the initial checkpoint."""
    result = config_pb2.ExperimentOptions()
    result.CopyFrom(config)
    result.model_options.backbone.pretrained_weights = ""
    result.model_options.initial_checkpoint = ""
    return result


def find_saved_model(path: str) -> str:
    """The SavedModel directory: ``path`` or its ``saved_model/``."""
    if os.path.isfile(os.path.join(path, _SAVED_MODEL_PB)):
        return path
    return os.path.join(path, _EXPORT_SAVED_MODEL_DIR)


def find_metadata(model_path: str) -> Optional[str]:
    """The export metadata file of an exported model, or None.

    Looked for in the directory given (or holding the .tflite file) and in
    its parent: ``remax_tf.export`` writes ``DIR/metadata.json`` next to
    ``DIR/saved_model/`` and ``DIR/tflite/*.tflite``.
    """
    path = os.path.normpath(os.path.abspath(model_path))
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    candidates = [
        os.path.join(directory, METADATA_FILE),
        os.path.join(os.path.dirname(directory), METADATA_FILE),
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def read_metadata(path: Optional[str]) -> Dict[str, Any]:
    """The metadata dict ({} when ``path`` is None)."""
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read the export metadata {path}: {e}") from e
    if not isinstance(data, dict):
        raise ModelFileError(f"export metadata {path} must hold a JSON object.")
    return data


def resolve_descriptor(
    dataset: Optional[str], metadata: Dict[str, Any], metadata_path: Optional[str]
) -> DatasetDescriptor:
    """The dataset of an exported model.

    Order: ``--dataset`` (a registered name or a descriptor .json); the
    metadata's embedded ``descriptor`` (:func:`datasets.descriptor_to_json`);
    the metadata's ``dataset`` name when it is registered.

    Raises:
      ModelFileError: none of them is available.
    """
    if dataset:
        return datasets.get_dataset_descriptor(dataset)
    if METADATA_DESCRIPTOR in metadata:
        try:
            return datasets.descriptor_from_json(
                metadata[METADATA_DESCRIPTOR], f"{metadata_path}:{METADATA_DESCRIPTOR}"
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(
                f"export metadata {metadata_path}: bad '{METADATA_DESCRIPTOR}': {e}"
            ) from e
    name = metadata.get(METADATA_DATASET)
    if name and name in datasets.known_datasets():
        return datasets.get_dataset_descriptor(name)
    where = (
        f"its metadata {metadata_path} names dataset {name!r}, which is not registered"
        if metadata_path
        else f"no {METADATA_FILE} was found next to it"
    )
    raise ModelFileError(
        f"the exported model's dataset is unknown: {where}. Fix: pass --dataset "
        "with a registered name or the descriptor .json written by "
        "remax_tf.data.build_custom_data."
    )
