"""ReMaX's semantic head (training only): m_sem = SemanticHead(x_sem).

Paper Sec. 3.1 / 4.1: "an ASPP module and a 1x1 convolution that outputs N_C
channels", applied to x_sem, the key of a kMaX layer's k-means
cross-attention. One head per relaxed layer, each with its own weights; the
logits feed ReMask (Eq. 1) and a semantic loss, and the heads are dropped at
inference. N_C counts things then stuff (void excluded), the order of the
class head. The activation follows kMaX's heads (GELU); the paper does not
name one.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.config.deeplab2_defaults import ASPP_ATROUS_RATES
from remax_tf.model.heads.conv_head import FINAL_CONV_STDDEV
from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.aspp import ASPP
from remax_tf.model.layers.batch_norm import BNConfig

# Paper Sec. 4.1 gives the structure, not the widths: kMaX's auxiliary ASPP
# (256 channels, rates 6/12/18) is the default (remax_tf/config/resolved.py).
REMAX_SEMANTIC_HEAD_CHANNELS = 256


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class ReMaXSemanticHead(tf_keras.layers.Layer):
    """ASPP then a 1x1 conv (with bias) to ``num_classes`` logits."""

    def __init__(
        self,
        num_classes: int,
        *,
        channels: int = REMAX_SEMANTIC_HEAD_CHANNELS,
        atrous_rates: Sequence[int] = ASPP_ATROUS_RATES,
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.channels = int(channels)
        self.atrous_rates = [int(r) for r in atrous_rates]
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._aspp = ASPP(
            self.channels,
            self.atrous_rates,
            activation=activation,
            bn_config=bn_config,
            name="aspp",
        )
        self._final_conv = tf_keras.layers.Conv2D(
            self.num_classes,
            1,
            kernel_initializer=tf_keras.initializers.TruncatedNormal(
                stddev=FINAL_CONV_STDDEV
            ),
            name="final_conv",
        )

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        return self._final_conv(self._aspp(inputs, training=training))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            channels=self.channels,
            atrous_rates=list(self.atrous_rates),
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
