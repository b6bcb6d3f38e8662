"""Atrous spatial pyramid pooling (DeepLabv3, Chen et al., 2017).

As DeepLab2 ``model/decoder/aspp.py``: five parallel branches on the input --
a 1x1 conv, three 3x3 convs with the given atrous rates, and global average
pooling (DeepLab2's average-pooling op, see :func:`_global_average_pool`) followed by a 1x1 conv broadcast back to the input size -- each with
BN and the activation; their concatenation is projected by a 1x1 conv+BN+act
and followed by dropout. With ``use_only_1x1_proj_conv`` only the projection
is kept. kMaX's auxiliary semantic decoder and ReMaX's semantic heads use it.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct

# DeepLab2 ASPP: dropout after the projection when all five branches are used.
ASPP_DROPOUT_RATE = 0.1
NUM_ATROUS_BRANCHES = 3


def _global_average_pool(inputs: tf.Tensor) -> tf.Tensor:
    """[B, H, W, C] -> [B, 1, 1, C], as DeepLab2's ``ASPPPool``.

    DeepLab2 pools with an average-pooling op whose window is the whole static
    input (``backend.pool2d(x, x.shape[1:3], pool_mode='avg')``), which sums in
    another order than ``tf.reduce_mean`` (up to 1.6e-4 apart on COCO R50
    features); with a static size we use the same op, so the auxiliary
    semantic head matches DeepLab2 bitwise. Unknown sizes (any-size exports)
    fall back to the mean.
    """
    size = inputs.shape[1:3]
    if size[0] is None or size[1] is None:
        return tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
    return tf.nn.avg_pool2d(
        inputs, ksize=list(size), strides=list(size), padding="VALID"
    )


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class ASPP(tf_keras.layers.Layer):
    """ASPP with ``output_channels`` per branch and three atrous rates."""

    def __init__(
        self,
        output_channels: int,
        atrous_rates: Sequence[int],
        *,
        use_only_1x1_proj_conv: bool = False,
        activation: str = "relu",
        dropout_rate: float = ASPP_DROPOUT_RATE,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        atrous_rates = [int(r) for r in atrous_rates]
        if not use_only_1x1_proj_conv and len(atrous_rates) != NUM_ATROUS_BRANCHES:
            raise ValueError(
                f"{self.name}: ASPP needs exactly {NUM_ATROUS_BRANCHES} atrous rates, "
                f"got {atrous_rates}."
            )
        self.output_channels = int(output_channels)
        self.atrous_rates = atrous_rates
        self.use_only_1x1_proj_conv = bool(use_only_1x1_proj_conv)
        self.activation = check_activation(activation)
        self.dropout_rate = float(dropout_rate)
        self.bn_config = dict(bn_config) if bn_config else None

        def conv(kernel_size: int, name: str, atrous_rate: int = 1) -> Conv2DBNAct:
            return Conv2DBNAct(
                self.output_channels,
                kernel_size,
                atrous_rate=atrous_rate,
                activation=activation,
                bn_config=bn_config,
                name=name,
            )

        self._proj_conv_bn_act = conv(1, "proj_conv_bn_act")
        if not self.use_only_1x1_proj_conv:
            self._conv_bn_act = conv(1, "conv_bn_act")
            self._atrous_convs = [
                conv(3, f"aspp_conv{i + 1}", rate)
                for i, rate in enumerate(atrous_rates)
            ]
            self._pool_conv_bn_act = conv(1, "aspp_pool")
            self._proj_drop = tf_keras.layers.Dropout(self.dropout_rate)

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        if self.use_only_1x1_proj_conv:
            return self._proj_conv_bn_act(inputs, training=training)
        branches = [self._conv_bn_act(inputs, training=training)]
        branches += [conv(inputs, training=training) for conv in self._atrous_convs]
        pooled = _global_average_pool(inputs)
        pooled = self._pool_conv_bn_act(pooled, training=training)
        # A 1x1 map resized with aligned corners is a broadcast.
        branches.append(pooled + tf.zeros_like(branches[0]))
        x = self._proj_conv_bn_act(tf.concat(branches, axis=-1), training=training)
        return self._proj_drop(x, training=training)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            output_channels=self.output_channels,
            atrous_rates=list(self.atrous_rates),
            use_only_1x1_proj_conv=self.use_only_1x1_proj_conv,
            activation=self.activation,
            dropout_rate=self.dropout_rate,
            bn_config=self.bn_config,
        )
        return config
