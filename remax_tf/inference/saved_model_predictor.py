"""Predicting with an exported SavedModel (its ``serving_default`` signature).

``remax_tf.export`` writes a signature that takes one uint8 [H, W, 3] image of
any size and returns the maps at that size, so nothing is done around it.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.inference import model_files
from remax_tf.inference.base import Predictor
from remax_tf.inference.base import check_image
from remax_tf.inference.base import select_outputs

SERVING_SIGNATURE = "serving_default"


class SavedModelPredictor(Predictor):
    """Runs a SavedModel's ``serving_default`` signature on each image."""

    kind = model_files.SAVED_MODEL

    def __init__(self, path: str, descriptor: DatasetDescriptor) -> None:
        super().__init__(path, descriptor)
        try:
            self._loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise model_files.ModelFileError(
                f"cannot load the SavedModel {path}: {e}"
            ) from e
        signatures = getattr(self._loaded, "signatures", {})
        if SERVING_SIGNATURE not in signatures:
            raise model_files.ModelFileError(
                f"SavedModel {path} has no {SERVING_SIGNATURE!r} signature (it has "
                f"{sorted(signatures)}); export it with remax_tf.export."
            )
        self._function = signatures[SERVING_SIGNATURE]
        _, inputs = self._function.structured_input_signature
        if len(inputs) != 1:
            raise model_files.ModelFileError(
                f"SavedModel {path}: {SERVING_SIGNATURE} takes {sorted(inputs)}; "
                "expected one image input."
            )
        ((self._input_name, spec),) = inputs.items()
        # Current exports declare no rank (the signature checks it); older
        # ones declared [H, W, 3].
        if spec.dtype != tf.uint8 or spec.shape.rank not in (None, 3):
            raise model_files.ModelFileError(
                f"SavedModel {path}: {SERVING_SIGNATURE} input {self._input_name!r} "
                f"is {spec}; expected a uint8 [H, W, 3] image (remax_tf.export)."
            )

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        image = tf.constant(check_image(image))
        outputs = self._function(**{self._input_name: image})
        return select_outputs({k: v.numpy() for k, v in outputs.items()}, self.source)
