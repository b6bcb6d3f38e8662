"""One kMaX transformer layer (Yu et al., "k-means Mask Transformer", ECCV 2022).

Follows DeepLab2 ``DualPathTransformerLayer`` with only k-means cross-attention
and memory self-attention enabled (``model/layers/dual_path_transformer.py``).
Pixels are read, never updated; cluster centres (the memory, [B, NQ, C]) are:

1. projected: centres -> 1x1 conv+BN+act (width B_c); pixels -> act -> 1x1
   conv+BN+act (width B_c). The projected pixels are the *key* of the k-means
   cross-attention (ReMaX's x_sem) and the input of this layer's auxiliary
   prediction head;
2. k-means assignment: the auxiliary head's mask logits [B, h, w, NQ] are
   hard-assigned by an argmax over slots (no gradient);
3. k-means update: the assigned pixels' values (1x1 conv+BN of the projected
   pixels) are summed per slot, batch-normalised, projected by a 1x1 conv+BN
   (gamma 0), drop-pathed and added to the centres;
4. multi-head self-attention among the projected centres (similarity and
   retrieved values batch-normalised per head), 1x1 conv+BN (gamma 0),
   drop-path, added; then the activation;
5. FFN: 1x1 conv+BN+act (width F), 1x1 conv+BN (gamma 0), drop-path, added,
   then the activation.

Steps 3 and 4 both start from the centres given to the layer (the attention's
queries, keys and values come from step 1, before the k-means update).
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.model.heads.kmax_prediction_head import KMaXPredictionHead
from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.activations import get_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.batch_norm import batch_norm
from remax_tf.model.layers.conv_bn_act import Conv1DBNAct
from remax_tf.model.layers.conv_bn_act import truncated_normal
from remax_tf.model.layers.drop_path import DropPath

# DeepLab2 kMaX transformer decoder: 8 heads, FFN width 2048.
NUM_HEADS = 8
FFN_CHANNELS = 2048


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class KMaXTransformerLayer(tf_keras.layers.Layer):
    """Updates cluster centres from one pixel feature map.

    Args:
      bottleneck_channels: Width of the projected centres and pixels (DeepLab2:
        256).
      key_depth: Total query/key depth of the self-attention (DeepLab2: 128).
      value_depth: Total value depth of both attentions (DeepLab2: 256).
      num_heads: Self-attention heads.
      ffn_channels: Hidden width of the FFN.
      drop_path_keep_prob: Keep probability of the three residual branches.
      activation: Activation name (kMaX: gelu).
      prediction_head_config: Keyword arguments of this layer's auxiliary
        :class:`KMaXPredictionHead` (``num_classes_with_void`` required).
      bn_config: See :mod:`remax_tf.model.layers.batch_norm`.

    Call inputs ``(pixel_feature [B, h, w, Cp], centres [B, NQ, C])``; returns
    ``(centres [B, NQ, C], auxiliary_prediction)``, where the dict holds the
    auxiliary head's outputs at this layer's resolution plus
    ``PRED_KEY_FEATURE_KEY``: the projected pixels [B, h, w, bottleneck].
    """

    def __init__(
        self,
        *,
        bottleneck_channels: int = 256,
        key_depth: int = 128,
        value_depth: int = 256,
        num_heads: int = NUM_HEADS,
        ffn_channels: int = FFN_CHANNELS,
        drop_path_keep_prob: float = 1.0,
        activation: str = "gelu",
        prediction_head_config: Optional[Mapping[str, Any]] = None,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for label, depth in (("key_depth", key_depth), ("value_depth", value_depth)):
            if depth % num_heads:
                raise ValueError(
                    f"{self.name}: {label} {depth} is not divisible by num_heads "
                    f"{num_heads}."
                )
        if not prediction_head_config or (
            "num_classes_with_void" not in prediction_head_config
        ):
            raise ValueError(
                f"{self.name}: prediction_head_config must give num_classes_with_void."
            )
        self.bottleneck_channels = int(bottleneck_channels)
        self.key_depth = int(key_depth)
        self.value_depth = int(value_depth)
        self.num_heads = int(num_heads)
        self.ffn_channels = int(ffn_channels)
        self.drop_path_keep_prob = float(drop_path_keep_prob)
        self.activation = check_activation(activation)
        self.prediction_head_config = dict(prediction_head_config)
        self.bn_config = dict(bn_config) if bn_config else None
        self._activation_fn = get_activation(activation)

        def conv(filters, name, activation="none", **extra):
            return Conv1DBNAct(
                filters, activation=activation, bn_config=bn_config, name=name, **extra
            )

        # Transformer initialisation std for the q/k/v projections (DeepLab2).
        qkv_init = truncated_normal(self.bottleneck_channels**-0.5)
        self._memory_conv1_bn_act = conv(
            self.bottleneck_channels, "memory_conv1_bn_act", activation
        )
        self._pixel_conv1_bn_act = conv(
            self.bottleneck_channels, "pixel_conv1_bn_act", activation
        )
        self._memory_qkv_conv_bn = conv(
            2 * self.key_depth + self.value_depth,
            "memory_qkv_conv_bn",
            kernel_initializer=qkv_init,
        )
        self._pixel_v_conv_bn = conv(
            self.value_depth, "pixel_v_conv_bn", kernel_initializer=qkv_init
        )
        self._batch_norm_similarity = batch_norm(
            bn_config, name="batch_norm_similarity", axis=1
        )
        self._batch_norm_retrieved_value = batch_norm(
            bn_config, name="batch_norm_retrieved_value", axis=[1, 3]
        )
        self._auxiliary_predictor = KMaXPredictionHead(
            activation=activation,
            bn_config=bn_config,
            name="auxiliary_predictor",
            **self.prediction_head_config,
        )
        self._kmeans_memory_batch_norm_retrieved_value = batch_norm(
            bn_config, name="kmeans_memory_batch_norm_retrieved_value"
        )
        self._drop_paths = {
            branch: (
                DropPath(self.drop_path_keep_prob, name=f"{branch}_drop_path")
                if self.drop_path_keep_prob < 1.0
                else None
            )
            for branch in ("kmeans", "attention", "ffn")
        }

    def build(self, input_shape) -> None:
        channels = int(input_shape[1][-1])

        def zero_gamma_conv(name):
            # Zero-initialised gamma: the branch starts switched off.
            return Conv1DBNAct(
                channels,
                bn_gamma_initializer="zeros",
                bn_config=self.bn_config,
                name=name,
            )

        self._memory_conv3_bn = zero_gamma_conv("memory_conv3_bn")
        self._memory_ffn_conv1_bn_act = Conv1DBNAct(
            self.ffn_channels,
            activation=self.activation,
            bn_config=self.bn_config,
            name="memory_ffn_conv1_bn_act",
        )
        self._memory_ffn_conv2_bn = zero_gamma_conv("memory_ffn_conv2_bn")
        self._kmeans_memory_conv3_bn = zero_gamma_conv("kmeans_memory_conv3_bn")
        super().build(input_shape)

    def _drop_path(self, branch: str, x: tf.Tensor, training) -> tf.Tensor:
        layer = self._drop_paths[branch]
        return x if layer is None else layer(x, training=training)

    def _self_attention(self, memory: tf.Tensor, training) -> tf.Tensor:
        slots = memory.shape[1]
        heads = self.num_heads
        qkv = self._memory_qkv_conv_bn(memory, training=training)
        query, key, value = tf.split(
            qkv, [self.key_depth, self.key_depth, self.value_depth], axis=-1
        )

        def split_heads(t, depth):
            return tf.reshape(t, [-1, slots, heads, depth // heads])

        query = tf.transpose(split_heads(query, self.key_depth), [0, 2, 1, 3])
        key = tf.transpose(split_heads(key, self.key_depth), [0, 2, 1, 3])
        value = split_heads(value, self.value_depth)
        similarity = tf.einsum("bhld,bhmd->bhlm", query, key)
        similarity = self._batch_norm_similarity(similarity, training=training)
        weights = tf.nn.softmax(similarity, axis=-1)
        retrieved = tf.einsum("bhlm,bmhd->bhld", weights, value)
        retrieved = self._batch_norm_retrieved_value(retrieved, training=training)
        retrieved = self._activation_fn(retrieved)
        retrieved = tf.reshape(
            tf.transpose(retrieved, [0, 2, 1, 3]), [-1, slots, self.value_depth]
        )
        return self._memory_conv3_bn(retrieved, training=training)

    def call(
        self, inputs: Sequence[tf.Tensor], training=None
    ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
        pixel_input, centres = inputs
        _, height, width, pixel_channels = pixel_input.shape
        num_slots = centres.shape[1]

        memory = self._memory_conv1_bn_act(centres, training=training)
        pixels = tf.reshape(
            self._activation_fn(pixel_input), [-1, height * width, pixel_channels]
        )
        pixels = self._pixel_conv1_bn_act(pixels, training=training)
        pixel_value = self._pixel_v_conv_bn(pixels, training=training)
        key_feature = tf.reshape(pixels, [-1, height, width, self.bottleneck_channels])

        # k-means assignment: each pixel joins its arg-max slot (no gradient).
        prediction = self._auxiliary_predictor(
            (key_feature, memory, memory), training=training
        )
        assignment = tf.argmax(
            prediction[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY], axis=-1
        )
        assignment = tf.stop_gradient(
            tf.one_hot(tf.reshape(assignment, [-1, height * width]), num_slots)
        )
        prediction[common.PRED_KEY_FEATURE_KEY] = key_feature

        # k-means update: sum of the assigned pixel values per slot.
        update = tf.einsum("blm,bld->bmd", assignment, pixel_value)
        update = self._kmeans_memory_batch_norm_retrieved_value(
            update, training=training
        )
        update = self._kmeans_memory_conv3_bn(update, training=training)
        output = centres + self._drop_path("kmeans", update, training)

        attention = self._self_attention(memory, training)
        output = self._activation_fn(
            output + self._drop_path("attention", attention, training)
        )

        ffn = self._memory_ffn_conv1_bn_act(output, training=training)
        ffn = self._memory_ffn_conv2_bn(ffn, training=training)
        output = self._activation_fn(output + self._drop_path("ffn", ffn, training))
        return output, prediction

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            bottleneck_channels=self.bottleneck_channels,
            key_depth=self.key_depth,
            value_depth=self.value_depth,
            num_heads=self.num_heads,
            ffn_channels=self.ffn_channels,
            drop_path_keep_prob=self.drop_path_keep_prob,
            activation=self.activation,
            prediction_head_config=dict(self.prediction_head_config),
            bn_config=self.bn_config,
        )
        return config
