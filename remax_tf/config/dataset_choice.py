"""Which dataset a config uses: one rule for the model, training, evaluation
and export.

The dataset of a split (``"train"`` or ``"eval"``) is that split's
``<split>_dataset_options.dataset``, else the other split's; with neither
set, :class:`ConfigError` (there is no default dataset: a model built for
COCO's 134 classes by accident trains and exports without complaint). The
model is built for the ``"train"`` dataset (its label space), evaluation and
export read the ``"eval"`` one.
"""

from __future__ import annotations

from remax_tf.config.errors import ConfigError
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.protos import config_pb2

TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)


def dataset_name(config: config_pb2.ExperimentOptions, split: str = TRAIN) -> str:
    """The registered name (or descriptor .json) of ``split``'s dataset.

    Raises:
      ConfigError: neither ``train_dataset_options.dataset`` nor
        ``eval_dataset_options.dataset`` is set.
      ValueError: ``split`` is not one of :data:`SPLITS`.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: use one of {SPLITS}.")
    other = EVAL if split == TRAIN else TRAIN
    for name in (split, other):
        value = getattr(config, f"{name}_dataset_options").dataset
        if value:
            return value
    raise ConfigError(
        f"{split}_dataset_options.dataset is not set (nor "
        f"{other}_dataset_options.dataset): the model's classes come from it. "
        'Fix: set it, e.g. dataset: "coco_panoptic" (remax_tf.data.datasets '
        "lists the registered names)."
    )


def dataset_descriptor(
    config: config_pb2.ExperimentOptions, split: str = TRAIN
) -> DatasetDescriptor:
    """The descriptor of :func:`dataset_name` (``KeyError``/``ValueError`` for
    a name that is not registered nor a descriptor .json)."""
    return get_dataset_descriptor(dataset_name(config, split))
