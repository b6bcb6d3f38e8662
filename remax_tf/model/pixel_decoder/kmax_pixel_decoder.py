"""kMaX-DeepLab's pixel decoder (DeepLab2 ``model/pixel_decoder/kmax.py``).

Stages run from stride 32 down to the output stride (4, or 2 for Cityscapes):
stage i is a :class:`BlockGroup` of ``num_blocks[i]`` axial or bottleneck
blocks of width ``widths[i]`` (output ``4 * widths[i]`` channels). Every
backbone feature it reads (``stage5``, ``stage4``, ...) first passes a
LayerNorm (eps 1e-6); between stages a :class:`ResizedFuse` projects the
previous stage's output and the next backbone feature to ``widths[i + 1]``
channels, upsamples and sums them. Bottleneck blocks dilate their 3x3 conv by
2, as DeepLab2's ``BlockGroup`` does here (it is built with
``original_resnet_input_stride=32`` and the default ``output_stride=16``).
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.block_group import BlockGroup
from remax_tf.model.layers.residual_blocks import RESIDUAL_BLOCKS
from remax_tf.model.layers.resized_fuse import ResizedFuse

# DeepLab2 kmax.py: LayerNorm epsilon on the backbone features.
LAYER_NORM_EPSILON = 1e-6
# See the module docstring: DeepLab2's decoder bottleneck blocks are dilated.
BOTTLENECK_ATROUS_RATE = 2
# Backbone endpoint read by each stage, from stride 32 down to stride 2.
BACKBONE_ENDPOINTS = ("stage5", "stage4", "stage3", "stage2", "stage1")


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class KMaXPixelDecoder(tf_keras.layers.Layer):
    """Decodes backbone endpoints into features at strides 32, 16, ..., os.

    Args:
      widths: Block width per stage (DeepLab2: 512, 256, 128, 64[, 32]).
      num_blocks: Blocks per stage (DeepLab2: 1, 5, 1, 1[, 1]).
      block_types: 'axial' or 'bottleneck' per stage.
      activation: Activation name (kMaX: gelu).
      bn_config: See :mod:`remax_tf.model.layers.batch_norm`.

    Call input: the encoder's endpoint dict. Returns a list of the stages'
    non-activated outputs, stride 32 first; the last one is the panoptic pixel
    feature.
    """

    def __init__(
        self,
        widths: Sequence[int] = (512, 256, 128, 64),
        num_blocks: Sequence[int] = (1, 5, 1, 1),
        block_types: Sequence[str] = ("axial", "axial", "bottleneck", "bottleneck"),
        *,
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        num_stages = len(widths)
        if not (num_stages == len(num_blocks) == len(block_types)):
            raise ValueError(
                f"{self.name}: widths {list(widths)}, num_blocks {list(num_blocks)} "
                f"and block_types {list(block_types)} need one entry per stage."
            )
        if not 1 <= num_stages <= len(BACKBONE_ENDPOINTS):
            raise ValueError(
                f"{self.name}: {num_stages} stages; use 1 to "
                f"{len(BACKBONE_ENDPOINTS)} (strides 32 down to 2)."
            )
        for block_type in block_types:
            if block_type not in RESIDUAL_BLOCKS:
                raise ValueError(
                    f"{self.name}: block type {block_type!r} is not one of "
                    f"{sorted(RESIDUAL_BLOCKS)}."
                )
        self.widths = [int(w) for w in widths]
        self.num_blocks = [int(n) for n in num_blocks]
        self.block_types = list(block_types)
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._endpoints = BACKBONE_ENDPOINTS[:num_stages]
        # Named as DeepLab2 names them (layer_normalization, _1, _2, ...).
        self._backbone_norms = [
            tf_keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON,
                name="layer_normalization" + (f"_{i}" if i else ""),
            )
            for i in range(num_stages)
        ]
        self._stages = [
            BlockGroup(
                block_type,
                width,
                blocks,
                atrous_rate=BOTTLENECK_ATROUS_RATE if block_type == "bottleneck" else 1,
                activation=activation,
                bn_config=bn_config,
                name=f"kmax_pixeldecoder_{i}",
            )
            for i, (width, blocks, block_type) in enumerate(
                zip(self.widths, self.num_blocks, self.block_types)
            )
        ]
        self._skip_connections = [
            ResizedFuse(
                width,
                activation=activation,
                bn_config=bn_config,
                name=f"kmax_pixel_decoder_skip_connection_{i}",
            )
            for i, width in enumerate(self.widths[1:])
        ]

    @property
    def output_strides(self) -> List[int]:
        return [32 // 2**i for i in range(len(self.widths))]

    @property
    def output_channels(self) -> List[int]:
        return [4 * w for w in self.widths]

    def call(
        self, endpoints: Mapping[str, tf.Tensor], training=None
    ) -> List[tf.Tensor]:
        missing = [k for k in self._endpoints if k not in endpoints]
        if missing:
            raise KeyError(
                f"{self.name}: the pixel encoder gives no {missing} (it gives "
                f"{sorted(endpoints)}); a decoder to stride "
                f"{self.output_strides[-1]} needs {list(self._endpoints)}."
            )
        outputs = []
        x = self._backbone_norms[0](endpoints[self._endpoints[0]])
        for i, stage in enumerate(self._stages):
            if i > 0:
                skip = self._backbone_norms[i](endpoints[self._endpoints[i]])
                x = self._skip_connections[i - 1]([x, skip], training=training)
            x = stage(x, training=training)
            outputs.append(x)
        return outputs

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            widths=list(self.widths),
            num_blocks=list(self.num_blocks),
            block_types=list(self.block_types),
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
