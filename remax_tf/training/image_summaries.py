"""TensorBoard pictures of training: ground truth beside the prediction.

A fixed batch of training images is kept; whenever the trainer writes
summaries, the current model predicts it (inference mode, with the
evaluation post-processing) and each row shows the image, the ground-truth
overlay and the predicted overlay, so progress is visible on the same images.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf import visualization
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.data.input_pipeline import build_dataset
from remax_tf.postprocess import build_post_processor

# Rows are enlarged to at least this width so outlines and names stay legible.
_MIN_WIDTH = 256


class ImageSummaries:
    """Writes ``panoptic/ground_truth_vs_prediction`` image summaries."""

    def __init__(
        self,
        *,
        model: tf_keras.Model,
        post_processor: tf_keras.layers.Layer,
        descriptor: DatasetDescriptor,
        strategy: tf.distribute.Strategy,
        batch: dict,
        max_images: int,
    ):
        self._post_processor = post_processor
        self._descriptor = descriptor
        self._strategy = strategy
        self._images = batch[common.IMAGE][:max_images]
        self._panoptic = batch[common.GT_PANOPTIC_KEY][:max_images].numpy()

        @tf.function
        def predict(images):
            return self._post_processor(model(images, training=False))[
                common.PRED_PANOPTIC_KEY
            ]

        self._predict = predict

    def rows(self) -> np.ndarray:
        """[N, H, W, 3] uint8: image | ground truth | prediction per row."""
        per_replica = self._strategy.run(self._predict, args=(self._images,))
        predicted = self._strategy.experimental_local_results(per_replica)[0].numpy()
        images = self._images.numpy().astype(np.uint8)
        rows = []
        for image, truth, guess in zip(images, self._panoptic, predicted):
            factor = -(-_MIN_WIDTH // image.shape[1])
            big = image.repeat(factor, axis=0).repeat(factor, axis=1)
            rows.append(
                visualization.side_by_side(
                    big,
                    visualization.overlay(
                        image, truth, self._descriptor, min_width=_MIN_WIDTH
                    ),
                    visualization.overlay(
                        image, guess, self._descriptor, min_width=_MIN_WIDTH
                    ),
                )
            )
        return np.stack(rows)

    def write(self, step: int) -> None:
        """Writes the rows if the active summary writer records this step."""
        if not bool(tf.summary.should_record_summaries()):
            return
        tf.summary.image(
            "panoptic/image_truth_prediction",
            self.rows(),
            step=step,
            max_outputs=len(self._panoptic),
        )


def build_image_summaries(
    config, model, descriptor: DatasetDescriptor, strategy: tf.distribute.Strategy
) -> Optional[ImageSummaries]:
    """The summaries of ``trainer_options.num_summary_images`` training images
    (None when 0)."""
    count = config.trainer_options.num_summary_images
    if count <= 0:
        return None
    batch = next(iter(build_dataset(config.train_dataset_options, is_training=True)))
    crop = list(config.train_dataset_options.crop_size)
    post_processor = build_post_processor(config.evaluator_options, descriptor, crop)
    return ImageSummaries(
        model=model,
        post_processor=post_processor,
        descriptor=descriptor,
        strategy=strategy,
        batch=batch,
        max_images=count,
    )
