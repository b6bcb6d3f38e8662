"""kMaX-DeepLab's transformer decoder: stacks of kMaX layers over strides.

DeepLab2 ``model/transformer_decoder/kmax.py``: learned cluster centres
[1, NQ, C] (truncated normal, std 1) tiled over the batch are refined by
``num_blocks[i]`` kMaX layers attending to the pixel-decoder feature at
``strides[i]`` (DeepLab2: 2 layers at each of 32, 16, 8). Two 1x1 conv+BN+act
projections of the final centres give the class and mask embeddings of the
final prediction head. Every layer's auxiliary prediction is returned, in
order, for deep supervision.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.conv_bn_act import Conv1DBNAct
from remax_tf.model.transformer_decoder.kmax_layer import FFN_CHANNELS
from remax_tf.model.transformer_decoder.kmax_layer import NUM_HEADS
from remax_tf.model.transformer_decoder.kmax_layer import KMaXTransformerLayer

# DeepLab2 kMaX: 256-wide centres; the attention keys are half as wide
# (DualPathTransformerLayer filters=128, key_expansion 1, value_expansion 2,
# bottleneck_expansion 2).
CHANNELS = 256
CLUSTER_CENTER_INIT_STDDEV = 1.0

# Output keys of KMaXTransformerDecoder.call.
CLASS_EMBEDDINGS = "transformer_class_feature"
MASK_EMBEDDINGS = "transformer_mask_feature"
AUXILIARY_PREDICTIONS = "auxiliary_predictions"


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class KMaXTransformerDecoder(tf_keras.layers.Layer):
    """Cluster-centre refinement over pixel features at several strides.

    Args:
      num_mask_slots: NQ, the number of cluster centres.
      num_blocks: kMaX layers per stage.
      strides: Pixel-decoder stride each stage attends to (for layer names).
      channels: Centre width C; the layers' bottleneck and value depth are C and
        their key depth C / 2, as in DeepLab2 (C = 256).
      num_heads, ffn_channels: Self-attention heads and FFN width.
      drop_path_keep_prob: Keep probability of every residual branch.
      prediction_head_config: Keyword arguments of each layer's auxiliary
        prediction head.

    Call inputs: a list with one pixel feature per stage (in ``strides``
    order). Returns a dict with ``CLASS_EMBEDDINGS`` and ``MASK_EMBEDDINGS``
    [B, NQ, C] and ``AUXILIARY_PREDICTIONS``, a tuple of one dict per layer.
    """

    def __init__(
        self,
        num_mask_slots: int,
        *,
        num_blocks: Sequence[int] = (2, 2, 2),
        strides: Sequence[int] = (32, 16, 8),
        channels: int = CHANNELS,
        num_heads: int = NUM_HEADS,
        ffn_channels: int = FFN_CHANNELS,
        drop_path_keep_prob: float = 1.0,
        activation: str = "gelu",
        prediction_head_config: Optional[Mapping[str, Any]] = None,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(num_blocks) != len(strides):
            raise ValueError(
                f"{self.name}: num_blocks {list(num_blocks)} and strides "
                f"{list(strides)} must have the same length."
            )
        if channels % 2:
            raise ValueError(f"{self.name}: channels must be even, got {channels}.")
        self.num_mask_slots = int(num_mask_slots)
        self.num_blocks = [int(n) for n in num_blocks]
        self.strides = [int(s) for s in strides]
        self.channels = int(channels)
        self.num_heads = int(num_heads)
        self.ffn_channels = int(ffn_channels)
        self.drop_path_keep_prob = float(drop_path_keep_prob)
        self.activation = check_activation(activation)
        self.prediction_head_config = dict(prediction_head_config or {})
        self.bn_config = dict(bn_config) if bn_config else None
        self._layers_per_stage = [
            [
                KMaXTransformerLayer(
                    bottleneck_channels=self.channels,
                    key_depth=self.channels // 2,
                    value_depth=self.channels,
                    num_heads=num_heads,
                    ffn_channels=ffn_channels,
                    drop_path_keep_prob=drop_path_keep_prob,
                    activation=activation,
                    prediction_head_config=self.prediction_head_config,
                    bn_config=bn_config,
                    name=f"kmax_transformer_decoder_os{stride}_{index}",
                )
                for index in range(blocks)
            ]
            for stride, blocks in zip(self.strides, self.num_blocks)
        ]
        self._class_embedding_projection = Conv1DBNAct(
            self.channels,
            activation=activation,
            bn_config=bn_config,
            name="class_embedding_projection",
        )
        self._mask_embedding_projection = Conv1DBNAct(
            self.channels,
            activation=activation,
            bn_config=bn_config,
            name="mask_embedding_projection",
        )

    @property
    def num_layers(self) -> int:
        return sum(self.num_blocks)

    def build(self, input_shape) -> None:
        self.cluster_centers = self.add_weight(
            name="cluster_centers",
            shape=(1, self.num_mask_slots, self.channels),
            initializer=tf_keras.initializers.TruncatedNormal(
                stddev=CLUSTER_CENTER_INIT_STDDEV
            ),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs: Sequence[tf.Tensor], training=None) -> Dict[str, Any]:
        if len(inputs) != len(self.strides):
            raise ValueError(
                f"{self.name}: expected {len(self.strides)} pixel features (strides "
                f"{self.strides}), got {len(inputs)}."
            )
        batch_size = tf.shape(inputs[0])[0]
        centres = tf.tile(self.cluster_centers, [batch_size, 1, 1])
        predictions = []
        for pixel_feature, stage in zip(inputs, self._layers_per_stage):
            for layer in stage:
                centres, prediction = layer((pixel_feature, centres), training=training)
                predictions.append(prediction)
        return {
            CLASS_EMBEDDINGS: self._class_embedding_projection(
                centres, training=training
            ),
            MASK_EMBEDDINGS: self._mask_embedding_projection(
                centres, training=training
            ),
            AUXILIARY_PREDICTIONS: tuple(predictions),
        }

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_mask_slots=self.num_mask_slots,
            num_blocks=list(self.num_blocks),
            strides=list(self.strides),
            channels=self.channels,
            num_heads=self.num_heads,
            ffn_channels=self.ffn_channels,
            drop_path_keep_prob=self.drop_path_keep_prob,
            activation=self.activation,
            prediction_head_config=dict(self.prediction_head_config),
            bn_config=self.bn_config,
        )
        return config
