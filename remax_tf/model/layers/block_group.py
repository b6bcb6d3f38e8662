"""A stage of residual blocks of one type (DeepLab2 ``BlockGroup``).

The first block carries the stage's stride; the others keep the resolution.
Input and output are non-activated features. Each block may have its own
drop-path keep probability (the schedule is decided by the caller).
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Sequence
from typing import Union

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.residual_blocks import get_residual_block


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class BlockGroup(tf_keras.layers.Layer):
    """``num_blocks`` residual blocks named ``block1`` ... ``blockN``.

    Args:
      block_type: 'axial' or 'bottleneck', or one of them per block.
      filters: Block width f (outputs 4f channels).
      num_blocks: Number of blocks.
      strides: Stride of the first block.
      atrous_rate: Dilation of the 3x3 convolutions (bottleneck blocks only).
      activation: Activation name.
      drop_path_keep_probs: One keep probability for all blocks, or one per
        block.
      bn_config: See :mod:`remax_tf.model.layers.batch_norm`.
    """

    def __init__(
        self,
        block_type: Union[str, Sequence[str]],
        filters: int,
        num_blocks: int,
        *,
        strides: int = 1,
        atrous_rate: int = 1,
        activation: str = "relu",
        drop_path_keep_probs: Union[float, Sequence[float]] = 1.0,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_blocks < 1:
            raise ValueError(f"{self.name}: num_blocks must be >= 1, got {num_blocks}.")
        if isinstance(drop_path_keep_probs, (int, float)):
            drop_path_keep_probs = [float(drop_path_keep_probs)] * num_blocks
        if len(drop_path_keep_probs) != num_blocks:
            raise ValueError(
                f"{self.name}: drop_path_keep_probs has {len(drop_path_keep_probs)} "
                f"entries for {num_blocks} blocks."
            )
        block_types = (
            [block_type] * num_blocks
            if isinstance(block_type, str)
            else list(block_type)
        )
        if len(block_types) != num_blocks:
            raise ValueError(
                f"{self.name}: block_type lists {len(block_types)} types for "
                f"{num_blocks} blocks."
            )
        self.block_type = block_type if isinstance(block_type, str) else block_types
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.strides = int(strides)
        self.atrous_rate = int(atrous_rate)
        self.activation = check_activation(activation)
        self.drop_path_keep_probs = [float(p) for p in drop_path_keep_probs]
        self.bn_config = dict(bn_config) if bn_config else None
        self._blocks = []
        for index, (kind, keep) in enumerate(
            zip(block_types, self.drop_path_keep_probs)
        ):
            extra = {"atrous_rate": self.atrous_rate} if kind == "bottleneck" else {}
            self._blocks.append(
                get_residual_block(kind)(
                    self.filters,
                    strides=self.strides if index == 0 else 1,
                    activation=activation,
                    drop_path_keep_prob=keep,
                    bn_config=bn_config,
                    name=f"block{index + 1}",
                    **extra,
                )
            )

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        x = inputs
        for block in self._blocks:
            x = block(x, training=training)
        return x

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            block_type=self.block_type,
            filters=self.filters,
            num_blocks=self.num_blocks,
            strides=self.strides,
            atrous_rate=self.atrous_rate,
            activation=self.activation,
            drop_path_keep_probs=list(self.drop_path_keep_probs),
            bn_config=self.bn_config,
        )
        return config
