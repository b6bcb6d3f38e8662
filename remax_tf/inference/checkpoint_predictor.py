"""Predicting with a training checkpoint and its config.

The model is built from the config and the checkpoint restored into it
strictly (:func:`remax_tf.inference.restored_model.build_restored_model`,
which the export uses too), and images
go through the ``serving_default`` function of
:class:`remax_tf.export.saved_model.ServingModule`: the evaluation
preprocessing, the model, the config's post-processing and the undo to the
image size, i.e. what evaluation and the exported SavedModel run.
"""

from __future__ import annotations

from typing import Dict
from typing import Optional

import numpy as np
import tensorflow as tf

from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.export.saved_model import build_serving_module
from remax_tf.inference import model_files
from remax_tf.inference.base import Predictor
from remax_tf.inference.base import check_image
from remax_tf.inference.base import select_outputs
from remax_tf.inference.restored_model import build_restored_model
from remax_tf.protos import config_pb2

# Input name of the exported serving_default signature (remax_tf.export).
SERVING_INPUT = "image"


class CheckpointPredictor(Predictor):
    """A model built from ``config`` with the weights of a checkpoint.

    Args:
      config: The experiment config the checkpoint was trained with.
      checkpoint: A ``ckpt-N`` prefix, a checkpoint directory, or the
        trainer's model_dir (``<experiment_name>/`` is looked in).
      descriptor: The dataset; default: the config's evaluation dataset.

    Raises:
      ModelFileError: no checkpoint, or one that does not fit the model.
    """

    kind = model_files.CHECKPOINT

    def __init__(
        self,
        config: config_pb2.ExperimentOptions,
        checkpoint: str,
        descriptor: Optional[DatasetDescriptor] = None,
    ) -> None:
        restored = build_restored_model(
            config,
            checkpoint,
            flag="--model",
            verb="predict with",
            descriptor=descriptor,
        )
        super().__init__(restored.checkpoint, restored.descriptor)
        self.restore_report = restored.report
        self.serving_module = build_serving_module(
            restored.config, restored.model, restored.descriptor
        )
        # The SavedModel's serving_default, traced once for every image size
        # (autograph off, as the export traces it: the graph uses TensorFlow
        # control flow explicitly).
        self.serving_function = tf.function(
            self.serving_module.serve_image,
            input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, SERVING_INPUT)],
            autograph=False,
        ).get_concrete_function()

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        outputs = self.serving_function(tf.constant(check_image(image)))
        return select_outputs({k: v.numpy() for k, v in outputs.items()}, self.source)
