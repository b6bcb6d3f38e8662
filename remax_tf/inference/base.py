"""What every predictor shares: the :class:`Predictor` interface, the maps it
returns (:data:`OUTPUT_KEYS`) and the checks around a call.

The three kinds (:mod:`~remax_tf.inference.checkpoint_predictor`,
:mod:`~remax_tf.inference.saved_model_predictor`,
:mod:`~remax_tf.inference.tflite_predictor`) build on this module;
:func:`remax_tf.inference.predictor.load_predictor`, above them, picks one.
"""

from __future__ import annotations

from typing import Dict

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
