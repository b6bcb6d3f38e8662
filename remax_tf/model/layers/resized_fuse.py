"""Fuses features of different sizes by 1x1 projection, resize and sum.

DeepLab2 ``model/layers/resized_fuse.py`` (MaX-DeepLab's stacked decoder, used
by the kMaX pixel decoder's skip connections): each input whose channel count
differs from ``num_channels`` is activated, projected by a 1x1 conv+BN
(``resized_conv_bn{i}``), and bilinearly resized with aligned corners; inputs
that already have ``num_channels`` are only resized. The results are summed
(not activated). The output takes the spatial size of the *last* input, which
in the pixel decoder is the backbone feature of the target stride.

DeepLab2 replaces the resize by a stride-2 1x1 conv when an input is exactly
twice the target size; kMaX only upsamples, so that branch never runs there
and is not implemented.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import List

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.activations import get_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct


def resize_bilinear_align_corners(features: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize with aligned corners (DeepLab2 ``utils.resize_bilinear``)."""
    if tuple(features.shape[1:3]) == tuple(size):
        return features
    return tf.raw_ops.ResizeBilinear(
        images=features,
        size=[int(size[0]), int(size[1])],
        align_corners=True,
        half_pixel_centers=False,
    )


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class ResizedFuse(tf_keras.layers.Layer):
    """Sum of projected and resized inputs, at the last input's size."""

    def __init__(
        self,
        num_channels: int,
        *,
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_channels = int(num_channels)
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._activation_fn = get_activation(activation)
        self._projections: List = []

    def build(self, input_shape) -> None:
        self._projections = [
            None
            if int(shape[-1]) == self.num_channels
            else Conv2DBNAct(
                self.num_channels,
                1,
                bn_config=self.bn_config,
                name=f"resized_conv_bn{index + 1}",
            )
            for index, shape in enumerate(input_shape)
        ]
        super().build(input_shape)

    def call(self, inputs, training=None) -> tf.Tensor:
        size = inputs[-1].shape[1:3]
        outputs = []
        for feature, projection in zip(inputs, self._projections):
            if projection is not None:
                feature = projection(self._activation_fn(feature), training=training)
            outputs.append(resize_bilinear_align_corners(feature, size))
        return tf.add_n(outputs)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_channels=self.num_channels,
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
