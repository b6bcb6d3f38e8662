"""Axial-ResNet-50 pixel encoder of kMaX-DeepLab (``kmax_axial_resnet50``).

The MaX-DeepLab-S backbone (Wang et al., CVPR 2021) as DeepLab2 builds it for
kMaX (``model/pixel_encoder/axial_resnet.py``, 'axial_resnet50'): an
Inception stem (three 3x3 convs: 64 stride 2, 64, 128), then ResNet-50 stages
of (3, 4, 6, 3) blocks of widths (64, 128, 256, 512), GELU everywhere. Blocks
whose input stride is >= 16 are axial-attention blocks (the last 5 of stage 4
and all of stage 5); the others are convolutional bottlenecks. The first block
of every stage has stride 2 (no max-pool after the stem). Drop path: on blocks
at stride >= 16, keep probability scheduled linearly over the 4 stages by
default (DeepLab2 kMaX fixes 'linear').

Endpoints: ``stage1`` (stem, stride 2, 128 channels) to ``stage5`` (stride 32,
2048 channels) non-activated, and ``res1`` to ``res5`` = GELU(stage), the
contract of every pixel encoder (``remax_tf/model/pixel_encoder/__init__.py``).
Parameters: 41,343,424 trainable, as DeepLab2's.
"""

from __future__ import annotations

import math
from typing import Any
from typing import Callable
from typing import Dict
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import get_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.batch_norm import bn_config_from_norm_layer
from remax_tf.model.layers.block_group import BlockGroup
from remax_tf.model.layers.conv_bn_act import Conv2DBNAct
from remax_tf.model.layers.drop_path import drop_path_keep_prob_for_block

# DeepLab2 axial_resnet.py (AxialResNet defaults, resnet_beta stem).
NUM_BLOCKS = (3, 4, 6, 3)
STEM_CHANNELS = (64, 64, 128)
ACTIVATION = "gelu"
USE_AXIAL_BEYOND_STRIDE = 16
# DeepLab2 BlockGroup: drop path beyond stride 16, schedule over 4 stages.
DROP_PATH_BEYOND_STRIDE = 16
DROP_PATH_NUM_STAGES = 4
# DeepLab2 pixel_encoder/axial_resnet.get_model: kMaX uses a linear schedule.
DEFAULT_DROP_PATH_SCHEDULE = "linear"


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class InceptionStem(tf_keras.layers.Layer):
    """3x3 stride-2 conv+BN+act, 3x3 conv+BN+act, 3x3 conv+BN (not activated)."""

    def __init__(
        self,
        channels: Sequence[int] = STEM_CHANNELS,
        *,
        activation: str = ACTIVATION,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = [int(c) for c in channels]
        self.activation = activation
        self.bn_config = dict(bn_config) if bn_config else None
        self._convs = [
            Conv2DBNAct(
                self.channels[0],
                3,
                strides=2,
                activation=activation,
                bn_config=bn_config,
                name="conv1_bn_act",
            ),
            Conv2DBNAct(
                self.channels[1],
                3,
                activation=activation,
                bn_config=bn_config,
                name="conv2_bn_act",
            ),
            Conv2DBNAct(self.channels[2], 3, bn_config=bn_config, name="conv3_bn"),
        ]

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        x = inputs
        for conv in self._convs:
            x = conv(x, training=training)
        return x

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            channels=list(self.channels),
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config


def _stage_layout(
    input_stride: int, num_blocks: int, keep_prob: float, schedule: str
) -> tuple:
    """Block types and drop-path keep probabilities of one stage.

    DeepLab2 BlockGroup reads the *original ResNet* stride of each block: the
    stage's input stride for its first block, twice that for the others.
    """
    types, keeps = [], []
    for index in range(num_blocks):
        stride = input_stride if index == 0 else 2 * input_stride
        types.append("axial" if stride >= USE_AXIAL_BEYOND_STRIDE else "bottleneck")
        if stride >= DROP_PATH_BEYOND_STRIDE:
            stage = int(round(math.log2(stride))) - 1
            keeps.append(
                drop_path_keep_prob_for_block(
                    stage, DROP_PATH_NUM_STAGES, keep_prob, schedule
                )
            )
        else:
            keeps.append(1.0)
    return types, keeps


class AxialResNet(tf_keras.Model):
    """Inception stem + four stages; returns the endpoint dict."""

    def __init__(
        self,
        *,
        num_blocks: Sequence[int] = NUM_BLOCKS,
        drop_path_keep_prob: float = 1.0,
        drop_path_schedule: str = DEFAULT_DROP_PATH_SCHEDULE,
        bn_config: BNConfig = None,
        name: str = "kmax_axial_resnet50",
    ) -> None:
        super().__init__(name=name)
        self._activation_fn = get_activation(ACTIVATION)
        self._stem = InceptionStem(bn_config=bn_config, name="stem")
        self._stages = []
        input_stride = 2
        for index, blocks in enumerate(num_blocks):
            types, keeps = _stage_layout(
                input_stride, blocks, drop_path_keep_prob, drop_path_schedule
            )
            self._stages.append(
                BlockGroup(
                    types,
                    32 * input_stride,
                    blocks,
                    strides=2,
                    activation=ACTIVATION,
                    drop_path_keep_probs=keeps,
                    bn_config=bn_config,
                    name=f"stage{index + 2}",
                )
            )
            input_stride *= 2

    def call(self, inputs: tf.Tensor, training=None) -> Dict[str, tf.Tensor]:
        x = self._stem(inputs, training=training)
        endpoints = {"stage1": x, "res1": self._activation_fn(x)}
        for index, stage in enumerate(self._stages):
            x = stage(x, training=training)
            endpoints[f"stage{index + 2}"] = x
            endpoints[f"res{index + 2}"] = self._activation_fn(x)
        return endpoints


def build_axial_resnet50(
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    drop_path_keep_prob: float = 1.0,
    drop_path_schedule: str = DEFAULT_DROP_PATH_SCHEDULE,
    norm_layer: Optional[Callable[..., tf_keras.layers.Layer]] = None,
) -> tf_keras.Model:
    """``kmax_axial_resnet50``: DeepLab2's kMaX Axial-ResNet-50 (MaX-S).

    Args:
      input_shape: [H, W, 3]; when given (fully defined) the model is built.
        Axial attention needs static spatial sizes, so an unbuilt model builds
        on its first call.
      drop_path_keep_prob: Keep probability of the deepest blocks.
      drop_path_schedule: 'constant' or 'linear' (DeepLab2 kMaX: linear).
      norm_layer: ``functools.partial(tf_keras.layers.BatchNormalization,
        ...)`` or None for DeepLab2's defaults.
    """
    model = AxialResNet(
        drop_path_keep_prob=drop_path_keep_prob,
        drop_path_schedule=drop_path_schedule,
        bn_config=bn_config_from_norm_layer(norm_layer),
    )
    if input_shape is not None and all(d is not None for d in input_shape):
        model(tf.zeros([1] + list(input_shape)), training=False)
    return model
