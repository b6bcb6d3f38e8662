"""kMaX's auxiliary semantic branch (training only): decoder + head.

DeepLab2 ``MaXDeepLab`` with ``use_auxiliary_semantic_head``: semantic logits
over the dataset's ``num_classes`` semantic ids (dataset order, void included
when it lies in range) from the stride-32 backbone feature. With the decoder
(COCO, ADE20K) the logits are at the low-level features' resolution (stride
4); without it (DeepLab2's Cityscapes setting) the head runs directly on the
stride-32 feature and the loss downsamples the ground truth instead.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.model.heads.conv_head import ConvHead
from remax_tf.model.heads.semantic_decoder import SemanticDecoder
from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class AuxiliarySemanticHead(tf_keras.layers.Layer):
    """Semantic logits from an endpoint dict.

    Args:
      num_classes: Output channels (DeepLab2: the dataset's num_classes).
      high_level_key: Endpoint the ASPP (or, without decoder, the head) reads.
      low_level_keys: Endpoints fused by the decoder, low to high resolution.
      low_level_channels_project: Projection width per low-level endpoint.
      use_decoder: Build the ASPP decoder (DeepLab2
        ``use_auxiliary_semantic_decoder``).
      head_channels: Width of the head's 5x5 conv block.
      decoder_config: Keyword arguments of :class:`SemanticDecoder` (aspp and
        decoder widths, rates, conv type).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        high_level_key: str = "stage5",
        low_level_keys: Sequence[str] = ("res3", "res2"),
        low_level_channels_project: Sequence[int] = (64, 32),
        use_decoder: bool = True,
        head_channels: int = 256,
        head_conv_type: str = "depthwise_separable_conv",
        decoder_config: Optional[Mapping[str, Any]] = None,
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(low_level_keys) != len(low_level_channels_project):
            raise ValueError(
                f"{self.name}: {len(low_level_keys)} low-level endpoints "
                f"{list(low_level_keys)} but {len(low_level_channels_project)} "
                f"projection widths {list(low_level_channels_project)}."
            )
        self.num_classes = int(num_classes)
        self.high_level_key = high_level_key
        self.low_level_keys = list(low_level_keys)
        self.low_level_channels_project = [int(c) for c in low_level_channels_project]
        self.use_decoder = bool(use_decoder)
        self.head_channels = int(head_channels)
        self.head_conv_type = head_conv_type
        self.decoder_config = dict(decoder_config or {})
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._decoder = None
        if self.use_decoder:
            self._decoder = SemanticDecoder(
                self.low_level_channels_project,
                activation=activation,
                bn_config=bn_config,
                name="auxiliary_semantic_decoder",
                **self.decoder_config,
            )
        self._head = ConvHead(
            self.head_channels,
            self.num_classes,
            conv_type=head_conv_type,
            activation=activation,
            bn_config=bn_config,
            name="auxiliary_semantic_head",
        )

    @property
    def checkpoint_items(self) -> Dict[str, tf_keras.layers.Layer]:
        items = {
            common.CKPT_SEMANTIC_HEAD_WITHOUT_LAST_LAYER: self._head.conv_block,
            common.CKPT_SEMANTIC_LAST_LAYER: self._head.final_conv,
        }
        if self._decoder is not None:
            items[common.CKPT_SEMANTIC_DECODER] = self._decoder
        return items

    def call(self, endpoints: Mapping[str, tf.Tensor], training=None) -> tf.Tensor:
        missing = [
            k for k in [self.high_level_key] + self.low_level_keys if k not in endpoints
        ]
        if missing:
            raise KeyError(
                f"{self.name}: endpoints {missing} not produced by the pixel "
                f"encoder (it gives {sorted(endpoints)})."
            )
        features = endpoints[self.high_level_key]
        if self._decoder is not None:
            low_levels = [endpoints[k] for k in self.low_level_keys]
            features = self._decoder((features, low_levels), training=training)
        return self._head(features, training=training)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            high_level_key=self.high_level_key,
            low_level_keys=list(self.low_level_keys),
            low_level_channels_project=list(self.low_level_channels_project),
            use_decoder=self.use_decoder,
            head_channels=self.head_channels,
            head_conv_type=self.head_conv_type,
            decoder_config=dict(self.decoder_config),
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
