"""Stochastic depth (drop path), Huang et al., "Deep Networks with Stochastic
Depth", ECCV 2016.

A residual branch is zeroed for a whole sample with probability
``1 - keep_prob`` during training and scaled by ``1 / keep_prob`` otherwise, so
its expectation is unchanged; at inference the layer is the identity
(DeepLab2 ``model/layers/drop_path.py``).
"""

from __future__ import annotations

from typing import Any
from typing import Dict

import tensorflow as tf
import tf_keras

# Schedules of DeepLab2 ``drop_path.get_drop_path_keep_prob``.
DROP_PATH_SCHEDULES = ("constant", "linear")


def _check_keep_prob(keep_prob: float) -> None:
    if not 0.0 < keep_prob <= 1.0:
        raise ValueError(
            f"drop-path keep_prob must be in (0, 1], got {keep_prob}; use 1.0 "
            "to disable drop path."
        )


def drop_path_keep_prob_for_block(
    block_index: int, total_blocks: int, keep_prob: float, schedule: str
) -> float:
    """Keep probability of one block (or stage) under a drop-path schedule.

    Follows DeepLab2 ``drop_path.get_drop_path_keep_prob``:

    * ``'constant'``: every block uses ``keep_prob``;
    * ``'linear'``: ``1 - (1 - keep_prob) * block_index / total_blocks``, i.e.
      1.0 at index 0 (the stem) falling linearly to ``keep_prob`` at index
      ``total_blocks``.

    DeepLab2's ResNets index by stage (``log2(stride) - 1`` of 4 stages);
    ConvNeXt spaces the rates per block itself (see ``convnext.py``).

    Args:
      block_index: Index of the block or stage, 0 <= block_index <= total_blocks.
      total_blocks: The index at which the schedule reaches ``keep_prob``.
      keep_prob: Keep probability of the last block, in (0, 1].
      schedule: ``'constant'`` or ``'linear'``.

    Returns:
      The keep probability for ``block_index``.

    Raises:
      ValueError: For an unknown schedule, a keep_prob outside (0, 1], or an
        index outside [0, total_blocks].
    """
    _check_keep_prob(keep_prob)
    if schedule == "constant":
        return keep_prob
    if schedule != "linear":
        raise ValueError(
            f"Unknown drop-path schedule {schedule!r}; known: {DROP_PATH_SCHEDULES}."
        )
    if total_blocks <= 0 or not 0 <= block_index <= total_blocks:
        raise ValueError(
            f"drop-path block_index {block_index} must be in [0, total_blocks] "
            f"with total_blocks > 0, got total_blocks={total_blocks}."
        )
    return 1.0 - (1.0 - keep_prob) * block_index / total_blocks


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class DropPath(tf_keras.layers.Layer):
    """Drops a residual branch per sample (stochastic depth).

    In training, each sample of the batch is kept with probability
    ``keep_prob`` and then scaled by ``1 / keep_prob``; otherwise it is zeroed.
    At inference, or when ``keep_prob == 1``, the input is returned unchanged.
    """

    def __init__(self, keep_prob: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_keep_prob(keep_prob)
        self.keep_prob = float(keep_prob)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if self.keep_prob == 1.0 or training is None:
            return inputs
        if isinstance(training, (bool, int)):
            return self._drop(inputs) if training else inputs
        # A symbolic ``training`` flag (e.g. a tf.bool tensor) picks at run time.
        return tf.cond(
            tf.cast(training, tf.bool), lambda: self._drop(inputs), lambda: inputs
        )

    def _drop(self, inputs: tf.Tensor) -> tf.Tensor:
        # One Bernoulli draw per sample, broadcast over the other axes.
        rank = inputs.shape.rank
        mask_shape = tf.concat(
            [tf.shape(inputs)[:1], tf.ones([rank - 1], tf.int32)], axis=0
        )
        uniform = tf.random.uniform(mask_shape, dtype=inputs.dtype)
        keep_mask = tf.floor(self.keep_prob + uniform)
        return inputs * (keep_mask / self.keep_prob)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["keep_prob"] = self.keep_prob
        return config
