"""kMaX's auxiliary semantic decoder (training only).

DeepLab2 ``PanopticDeepLabSingleDecoder`` as kMaX uses it: an ASPP on the
stride-32 backbone feature, then for each low-level feature (e.g. res3, then
res2) a 1x1 conv+BN+act projection, an aligned-corner bilinear upsampling of
the running feature to its size, concatenation, and a 5x5 fusion conv block.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.config.deeplab2_defaults import ASPP_ATROUS_RATES
from remax_tf.model.heads.conv_head import HEAD_KERNEL_SIZE
from remax_tf.model.heads.conv_head import conv_block
from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.aspp import ASPP
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct
from remax_tf.model.layers.resized_fuse import resize_bilinear_align_corners


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class SemanticDecoder(tf_keras.layers.Layer):
    """ASPP + low-level fusion; call inputs ``(high_level, [low_level, ...])``.

    Low-level features are given from the lowest resolution to the highest;
    the output has ``decoder_channels`` channels at the last one's size.
    """

    def __init__(
        self,
        low_level_channels_project: Sequence[int],
        *,
        aspp_channels: int = 256,
        atrous_rates: Sequence[int] = ASPP_ATROUS_RATES,
        aspp_use_only_1x1_proj_conv: bool = False,
        decoder_channels: int = 256,
        decoder_conv_type: str = "depthwise_separable_conv",
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.low_level_channels_project = [int(c) for c in low_level_channels_project]
        self.aspp_channels = int(aspp_channels)
        self.atrous_rates = [int(r) for r in atrous_rates]
        self.aspp_use_only_1x1_proj_conv = bool(aspp_use_only_1x1_proj_conv)
        self.decoder_channels = int(decoder_channels)
        self.decoder_conv_type = decoder_conv_type
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._aspp = ASPP(
            self.aspp_channels,
            self.atrous_rates,
            use_only_1x1_proj_conv=self.aspp_use_only_1x1_proj_conv,
            activation=activation,
            bn_config=bn_config,
            name="aspp",
        )
        self._low_level_convs = []
        self._fusion_convs = []
        for index, channels in enumerate(self.low_level_channels_project):
            self._low_level_convs.append(
                Conv2DBNAct(
                    channels,
                    1,
                    activation=activation,
                    bn_config=bn_config,
                    name=f"low_level_conv{index + 1}",
                )
            )
            self._fusion_convs.append(
                conv_block(
                    decoder_conv_type,
                    self.decoder_channels,
                    HEAD_KERNEL_SIZE,
                    activation=activation,
                    bn_config=bn_config,
                    name=f"fusion_conv{index + 1}",
                )
            )

    def call(self, inputs, training=None) -> tf.Tensor:
        high_level, low_levels = inputs
        if len(low_levels) != len(self._low_level_convs):
            raise ValueError(
                f"{self.name}: got {len(low_levels)} low-level features for "
                f"{len(self._low_level_convs)} projections."
            )
        x = self._aspp(high_level, training=training)
        for low, project, fuse in zip(
            low_levels, self._low_level_convs, self._fusion_convs
        ):
            low = project(low, training=training)
            x = resize_bilinear_align_corners(x, low.shape[1:3])
            x = fuse(tf.concat([x, low], axis=-1), training=training)
        return x

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            low_level_channels_project=list(self.low_level_channels_project),
            aspp_channels=self.aspp_channels,
            atrous_rates=list(self.atrous_rates),
            aspp_use_only_1x1_proj_conv=self.aspp_use_only_1x1_proj_conv,
            decoder_channels=self.decoder_channels,
            decoder_conv_type=self.decoder_conv_type,
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
