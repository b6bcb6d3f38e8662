"""Predicting with a training checkpoint and its config.

The model is built from the config (inference variables only), the
checkpoint's model items are restored into it (``global_step``, optimizer
slots and the training-only heads in the checkpoint are ignored), and images
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
from remax_tf.inference import model_files
from remax_tf.inference.predictor import Predictor
from remax_tf.inference.predictor import check_image
from remax_tf.inference.predictor import select_outputs
from remax_tf.protos import config_pb2

# How many unmatched variables an error lists.
_LISTED_VARIABLES = 8
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
        from remax_tf.export import saved_model as serving
        from remax_tf.model import build_model
        from remax_tf.model.checkpoint_restore import restore_items

        prefix = model_files.find_checkpoint(checkpoint, config.experiment_name)
        config = model_files.without_initial_weights(config)
        descriptor = descriptor or serving.export_descriptor(config)
        super().__init__(prefix, descriptor)
        crop_size = serving.eval_preprocess_config(config, descriptor).crop_size
        model = build_model(config, descriptor)
        model(tf.zeros([1, *crop_size, 3], tf.float32), training=False)
        try:
            report = restore_items(
                model.checkpoint_items, prefix, what="--model checkpoint"
            )
        except ValueError as e:
            raise model_files.ModelFileError(
                f"{e} Fix: pass the --config_file (and --config_override flags) "
                "the checkpoint was trained with."
            ) from e
        if report.missing:
            raise model_files.ModelFileError(
                f"--model checkpoint {prefix} lacks {len(report.missing)} variables "
                f"of the model built from the config, e.g. "
                f"{list(report.missing[:_LISTED_VARIABLES])}; predicting with them "
                "at their random initial values would be wrong. Fix: pass the "
                "--config_file (and --config_override flags) the checkpoint was "
                "trained with."
            )
        self.restore_report = report
        self.serving_module = serving.build_serving_module(config, model, descriptor)
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
