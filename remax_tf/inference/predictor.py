"""The predictor interface and :func:`load_predictor`, which picks one by path.

A predictor maps one upright RGB image ([H, W, 3] uint8, any size) to numpy
maps at that size, keyed by ``remax_tf.common`` names: always
``panoptic_pred`` (``semantic * label_divisor + instance``), and
``semantic_pred``, ``instance_pred``, ``instance_scores``,
``semantic_scores`` when the model provides them. Its ``descriptor`` says
what the labels mean.
"""

from __future__ import annotations

from typing import Optional
from typing import Sequence

from remax_tf.config import load_config
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.inference import model_files
from remax_tf.inference.base import OUTPUT_KEYS
from remax_tf.inference.base import Predictor
from remax_tf.inference.base import check_image
from remax_tf.inference.base import select_outputs
from remax_tf.inference.checkpoint_predictor import CheckpointPredictor
from remax_tf.inference.saved_model_predictor import SavedModelPredictor
from remax_tf.inference.tflite_predictor import TFLitePredictor

# Defined in remax_tf.inference.base (below the three kinds of predictor);
# named here too, where load_predictor returns them.
__all__ = [
    "OUTPUT_KEYS",
    "Predictor",
    "check_image",
    "load_predictor",
    "select_outputs",
]


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
        # Predicting reads no data files: the ``${REMAX_DATA_DIR}``-style
        # placeholders of dataset paths in the shipped configs may stay unset.
        config = load_config(config_file, config_overrides, unset_placeholders="empty")
        descriptor = None
        if dataset:
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
        return SavedModelPredictor(model_files.find_saved_model(model), descriptor)
    return TFLitePredictor(model, descriptor, metadata)
