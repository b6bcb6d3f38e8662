"""A 5x5 convolution block then a 1x1 output convolution.

DeepLab2 ``PanopticDeepLabSingleHead`` (``model/decoder/panoptic_deeplab.py``):
kMaX's pixel-space head (pixel embeddings) and auxiliary semantic head.
"""

from __future__ import annotations

from typing import Any
from typing import Dict

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct
from remax_tf.model.layers.conv_bn_act import SeparableConv2DBNAct

# DeepLab2 PanopticDeepLabSingleHead: 5x5 kernel, final conv initialised as
# an ImageNet classifier (truncated normal, std 0.01).
HEAD_KERNEL_SIZE = 5
FINAL_CONV_STDDEV = 0.01
CONV_TYPES = ("depthwise_separable_conv", "standard_conv")


def conv_block(
    conv_type: str,
    filters: int,
    kernel_size: int,
    *,
    activation: str,
    bn_config: BNConfig,
    name: str,
) -> tf_keras.layers.Layer:
    """A k x k conv+BN+act, depthwise-separable or standard (DeepLab2 names)."""
    if conv_type == "depthwise_separable_conv":
        return SeparableConv2DBNAct(
            filters, kernel_size, activation=activation, bn_config=bn_config, name=name
        )
    if conv_type == "standard_conv":
        return Conv2DBNAct(
            filters, kernel_size, activation=activation, bn_config=bn_config, name=name
        )
    raise ValueError(f"Unknown conv_type {conv_type!r}; known: {CONV_TYPES}.")


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class ConvHead(tf_keras.layers.Layer):
    """conv_block (``intermediate_channels``) -> 1x1 conv with bias."""

    def __init__(
        self,
        intermediate_channels: int,
        output_channels: int,
        *,
        conv_type: str = "depthwise_separable_conv",
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.intermediate_channels = int(intermediate_channels)
        self.output_channels = int(output_channels)
        self.conv_type = conv_type
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self.conv_block = conv_block(
            conv_type,
            self.intermediate_channels,
            HEAD_KERNEL_SIZE,
            activation=activation,
            bn_config=bn_config,
            name="conv_block",
        )
        self.final_conv = tf_keras.layers.Conv2D(
            self.output_channels,
            1,
            kernel_initializer=tf_keras.initializers.TruncatedNormal(
                stddev=FINAL_CONV_STDDEV
            ),
            name="final_conv",
        )

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        return self.final_conv(self.conv_block(inputs, training=training))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            intermediate_channels=self.intermediate_channels,
            output_channels=self.output_channels,
            conv_type=self.conv_type,
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
