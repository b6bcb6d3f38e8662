"""Residual bottleneck blocks: convolutional and axial-attention.

Both follow DeepLab2 ``model/layers/axial_blocks.py`` (``AxialBlock`` with a
3-element filters list):

* the block receives the *non-activated* output of the previous block and
  applies the activation itself;
* branch: 1x1 conv+BN+act, then a 3x3 conv+BN+act (:class:`BottleneckBlock`)
  or an axial attention followed by the activation (:class:`AxialBlock`), then
  a 1x1 conv+BN whose gamma starts at zero, so every block starts as the
  identity (Goyal et al., "Accurate, Large Minibatch SGD", 2017);
* shortcut: a 1x1 conv+BN (with the block's stride) when the channel count
  changes, else the (subsampled) activated input;
* output = shortcut + drop_path(branch), not activated.

Widths: a bottleneck block of ``filters`` f is [f, f, 4f]; an axial block is
[2f, f, 4f] where the attention has key depth f and value depth 2f.
"""

from __future__ import annotations

from typing import Any
from typing import Dict

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.activations import get_activation
from remax_tf.model.layers.axial_attention import AxialAttention2D
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct
from remax_tf.model.layers.drop_path import DropPath

# DeepLab2 ResNet bottleneck: output channels = 4 x filters.
BOTTLENECK_EXPANSION = 4
# DeepLab2 BlockGroup attention_bottleneck_expansion: the 1x1 conv before an
# axial attention is 2 x filters wide.
ATTENTION_BOTTLENECK_EXPANSION = 2


class _ResidualBlock(tf_keras.layers.Layer):
    """Shared structure; a subclass creates its branch with
    :meth:`_reduce_conv`, its middle layer and :meth:`_expand_conv` (in that
    order: the order of the variables) and applies the middle in
    :meth:`_middle`."""

    def __init__(
        self,
        filters: int,
        *,
        strides: int = 1,
        activation: str = "relu",
        drop_path_keep_prob: float = 1.0,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.activation = check_activation(activation)
        self.drop_path_keep_prob = float(drop_path_keep_prob)
        self.bn_config = dict(bn_config) if bn_config else None
        self._activation_fn = get_activation(activation)
        self._output_channels = self.filters * BOTTLENECK_EXPANSION
        self._drop_path = (
            DropPath(self.drop_path_keep_prob, name="drop_path")
            if self.drop_path_keep_prob < 1.0
            else None
        )
        self._shortcut = None

    def build(self, input_shape) -> None:
        if int(input_shape[-1]) != self._output_channels:
            self._shortcut = Conv2DBNAct(
                self._output_channels,
                1,
                strides=self.strides,
                bn_config=self.bn_config,
                name="shortcut",
            )
        super().build(input_shape)

    def _reduce_conv(self, channels: int) -> Conv2DBNAct:
        """The branch's first layer: 1x1 conv + BN + activation."""
        return Conv2DBNAct(
            channels,
            1,
            activation=self.activation,
            bn_config=self.bn_config,
            name="conv1_bn_act",
        )

    def _expand_conv(self) -> Conv2DBNAct:
        """The branch's last layer: 1x1 conv + BN to the output width, gamma
        zero so the block starts as the identity."""
        return Conv2DBNAct(
            self._output_channels,
            1,
            bn_gamma_initializer="zeros",
            bn_config=self.bn_config,
            name="conv3_bn",
        )

    def _middle(self, x: tf.Tensor, training) -> tf.Tensor:
        raise NotImplementedError

    def _branch(self, activated: tf.Tensor, training) -> tf.Tensor:
        x = self._conv1_bn_act(activated, training=training)
        return self._conv3_bn(self._middle(x, training), training=training)

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        activated = self._activation_fn(inputs)
        if self._shortcut is not None:
            shortcut = self._shortcut(activated, training=training)
        elif self.strides > 1:
            shortcut = activated[:, :: self.strides, :: self.strides]
        else:
            shortcut = activated
        branch = self._branch(activated, training)
        if self._drop_path is not None:
            branch = self._drop_path(branch, training=training)
        return shortcut + branch

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            activation=self.activation,
            drop_path_keep_prob=self.drop_path_keep_prob,
            bn_config=self.bn_config,
        )
        return config


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class BottleneckBlock(_ResidualBlock):
    """1x1 -> 3x3 (strided, dilated) -> 1x1 convolutional bottleneck."""

    def __init__(self, filters: int, *, atrous_rate: int = 1, **kwargs: Any) -> None:
        super().__init__(filters, **kwargs)
        self.atrous_rate = int(atrous_rate)
        self._conv1_bn_act = self._reduce_conv(self.filters)
        self._conv2_bn_act = Conv2DBNAct(
            self.filters,
            3,
            strides=self.strides,
            atrous_rate=self.atrous_rate,
            activation=self.activation,
            bn_config=self.bn_config,
            name="conv2_bn_act",
        )
        self._conv3_bn = self._expand_conv()

    def _middle(self, x: tf.Tensor, training) -> tf.Tensor:
        return self._conv2_bn_act(x, training=training)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["atrous_rate"] = self.atrous_rate
        return config


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class AxialBlock(_ResidualBlock):
    """1x1 -> axial attention (height, width) -> 1x1 bottleneck."""

    def __init__(self, filters: int, **kwargs: Any) -> None:
        super().__init__(filters, **kwargs)
        self._conv1_bn_act = self._reduce_conv(
            self.filters * ATTENTION_BOTTLENECK_EXPANSION
        )
        self._attention = AxialAttention2D(
            self.filters,
            strides=self.strides,
            bn_config=self.bn_config,
            name="attention",
        )
        self._conv3_bn = self._expand_conv()

    def _middle(self, x: tf.Tensor, training) -> tf.Tensor:
        return self._activation_fn(self._attention(x, training=training))


RESIDUAL_BLOCKS = {"bottleneck": BottleneckBlock, "axial": AxialBlock}


def get_residual_block(block_type: str):
    """The block class for ``block_type`` ('axial' or 'bottleneck')."""
    if block_type not in RESIDUAL_BLOCKS:
        raise ValueError(
            f"Unknown residual block type {block_type!r}; known: "
            f"{', '.join(sorted(RESIDUAL_BLOCKS))}."
        )
    return RESIDUAL_BLOCKS[block_type]
