"""The predictor interface and :func:`load_predictor`, which picks one by path.

A predictor maps one upright RGB image ([H, W, 3] uint8, any size) to numpy
maps at that size, keyed by ``remax_tf.common`` names: always
``panoptic_pred`` (``semantic * label_divisor + instance``), and
``semantic_pred``, ``instance_pred``, ``instance_scores``,
``semantic_scores`` when the model provides them. Its ``descriptor`` says
what the labels mean.
"""

from __future__ import annotations

import os
from typing import Dict
from typing import Optional
from typing import Sequence

import numpy as np

from remax_tf import common
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.inference import model_files

# The maps a predictor returns (all at the input image's size).
OUTPUT_KEYS = (
    common.PRED_PANOPTIC_KEY,
    common.PRED_SEMANTIC_KEY,
    common.PRED_INSTANCE_KEY,
    common.PRED_INSTANCE_SCORES_KEY,
    common.PRED_SEMANTIC_SCORES_KEY,
)


class Predictor:
    """Base class: ``kind``, ``source``, ``descriptor`` and ``__call__``."""

    kind: str = ""

    def __init__(self, source: str, descriptor: DatasetDescriptor) -> None:
        self.source = source
        self.descriptor = descriptor

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.kind} {self.source} (dataset {self.descriptor.name})"


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous [H, W, 3] uint8 array, or a ValueError."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"expected an [H, W, 3] RGB image, got shape {image.shape}.")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}.")
    return np.ascontiguousarray(image)


def select_outputs(outputs, source: str) -> Dict[str, np.ndarray]:
    """The :data:`OUTPUT_KEYS` present in ``outputs``, as numpy arrays."""
    if common.PRED_PANOPTIC_KEY not in outputs:
        raise model_files.ModelFileError(
            f"{source} returns {sorted(outputs)}, without "
            f"{common.PRED_PANOPTIC_KEY!r}; export it with remax_tf.export."
        )
    return {key: np.asarray(outputs[key]) for key in OUTPUT_KEYS if key in outputs}


def load_predictor(
    model: str,
    *,
    config_file: Optional[str] = None,
    config_overrides: Sequence[str] = (),
    dataset: Optional[str] = None,
) -> Predictor:
    """The predictor for ``--model`` (kind detected from the path).

    Args:
      model: A checkpoint (prefix, directory or the trainer's model_dir), a
        SavedModel directory or a .tflite file.
      config_file: The experiment textproto; required for a checkpoint.
      config_overrides: ``field.path=value`` overrides of the config.
      dataset: A registered dataset name or descriptor .json; for an exported
        model it replaces the dataset found in its metadata, for a checkpoint
        the config's.

    Raises:
      ModelFileError: nothing usable at ``model``, a checkpoint without
        config, or an unknown dataset.
      ConfigError: a bad config.
    """
    kind = model_files.detect_model_kind(model)
    if kind == model_files.CHECKPOINT:
        if not config_file:
            raise model_files.ModelFileError(
                f"--model {model} is a training checkpoint; pass the config that "
                "trained it with --config_file (and the same --config_override "
                "flags)."
            )
        from remax_tf.config import load_config
        from remax_tf.inference.checkpoint_predictor import CheckpointPredictor

        config = load_config(
            config_file, config_overrides, environ=_PlaceholderEnviron()
        )
        descriptor = None
        if dataset:
            from remax_tf.data.datasets import get_dataset_descriptor

            descriptor = get_dataset_descriptor(dataset)
        return CheckpointPredictor(config, model, descriptor)
    if config_file or config_overrides:
        raise model_files.ModelFileError(
            f"--model {model} is an exported {kind}; it carries its own settings, "
            "so --config_file / --config_override do not apply. Drop them."
        )
    metadata_path = model_files.find_metadata(model)
    metadata = model_files.read_metadata(metadata_path)
    descriptor = model_files.resolve_descriptor(dataset, metadata, metadata_path)
    if kind == model_files.SAVED_MODEL:
        from remax_tf.inference.saved_model_predictor import SavedModelPredictor

        return SavedModelPredictor(model_files.find_saved_model(model), descriptor)
    from remax_tf.inference.tflite_predictor import TFLitePredictor

    return TFLitePredictor(model, descriptor, metadata)


class _PlaceholderEnviron(dict):
    """``os.environ`` where unset ``${VAR}`` placeholders read as empty.

    Predicting needs no data files, so the ``${REMAX_DATA_DIR}``-style
    placeholders of dataset paths in the shipped configs may stay unset.
    """

    def __init__(self) -> None:
        super().__init__(os.environ)

    def __contains__(self, key) -> bool:
        return True

    def __missing__(self, key) -> str:
        return ""
