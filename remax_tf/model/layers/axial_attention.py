"""Position-sensitive axial attention (Axial-DeepLab, Wang et al., ECCV 2020).

A 2D self-attention factorised into a height-axis and a width-axis 1D
attention. Each 1D attention (DeepLab2 ``model/layers/axial_layers.py``):

* one projection to queries, keys and values (no bias) followed by a BN;
* similarity = q.k + q.r_q + k.r_k, with r the relative positional encodings
  of :mod:`positional_encodings`; the three terms are batch-normalised
  separately per head (a BN over the stacked [3, N, heads, L, L] tensor on axes
  0 and 2) and summed, then a softmax over keys;
* output = sum of the retrieved values and the retrieved value encodings, again
  each batch-normalised per head and channel before the sum.

The attention is global along each axis; any static length is supported.
"""

from __future__ import annotations

from typing import Any
from typing import Dict

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.batch_norm import batch_norm
from remax_tf.model.layers.positional_encodings import MAX_SPAN
from remax_tf.model.layers.positional_encodings import RelativePositionalEncoding

# DeepLab2 AxialAttention2D defaults: keys as wide as the layer, values twice.
KEY_EXPANSION = 1
VALUE_EXPANSION = 2
NUM_HEADS = 8


def _check_divisible(name: str, depth: int, num_heads: int) -> None:
    if depth % num_heads:
        raise ValueError(
            f"{name} = {depth} is not divisible by num_heads = {num_heads}."
        )


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class AxialAttention(tf_keras.layers.Layer):
    """Global 1D multi-head attention with relative positions over [N, L, C]."""

    def __init__(
        self,
        total_key_depth: int,
        total_value_depth: int,
        *,
        num_heads: int = NUM_HEADS,
        max_span: int = MAX_SPAN,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_divisible("total_key_depth", total_key_depth, num_heads)
        _check_divisible("total_value_depth", total_value_depth, num_heads)
        self.total_key_depth = int(total_key_depth)
        self.total_value_depth = int(total_value_depth)
        self.num_heads = int(num_heads)
        self.max_span = int(max_span)
        self.bn_config = dict(bn_config) if bn_config else None
        self._key_depth = self.total_key_depth // self.num_heads
        self._value_depth = self.total_value_depth // self.num_heads
        self._batch_norm_qkv = batch_norm(bn_config, name="batch_norm_qkv")
        # Per (term, head) statistics for the 3 similarity terms, per (term,
        # head, channel) for the 2 retrieved outputs (DeepLab2 axes).
        self._batch_norm_similarity = batch_norm(
            bn_config, name="batch_norm_similarity", axis=[0, 2]
        )
        self._batch_norm_retrieved_output = batch_norm(
            bn_config, name="batch_norm_retrieved_output", axis=[0, 2, 4]
        )
        self._query_rpe = RelativePositionalEncoding(
            self._key_depth, max_span=max_span, name="query_rpe"
        )
        self._key_rpe = RelativePositionalEncoding(
            self._key_depth, max_span=max_span, name="key_rpe"
        )
        self._value_rpe = RelativePositionalEncoding(
            self._value_depth, max_span=max_span, name="value_rpe"
        )

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1])
        # Standard transformer initialisation (std = fan_in^-0.5), as DeepLab2.
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel",
            shape=(channels, 2 * self.total_key_depth + self.total_value_depth),
            initializer=tf_keras.initializers.TruncatedNormal(stddev=channels**-0.5),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        length = inputs.shape[1]
        qkv = tf.einsum("nlc,cd->nld", inputs, self.qkv_kernel)
        qkv = self._batch_norm_qkv(qkv, training=training)
        query, key, value = tf.split(
            qkv,
            [self.total_key_depth, self.total_key_depth, self.total_value_depth],
            axis=-1,
        )
        heads = self.num_heads
        query = tf.transpose(
            tf.reshape(query, [-1, length, heads, self._key_depth]), [0, 2, 1, 3]
        )
        key = tf.transpose(
            tf.reshape(key, [-1, length, heads, self._key_depth]), [0, 2, 1, 3]
        )
        value = tf.reshape(value, [-1, length, heads, self._value_depth])

        similarity = tf.stack(
            [
                tf.einsum("bhld,bhmd->bhlm", query, key),
                tf.einsum("bhld,lmd->bhlm", query, self._query_rpe(inputs)),
                tf.einsum("bhmd,lmd->bhlm", key, self._key_rpe(inputs)),
            ]
        )
        similarity = self._batch_norm_similarity(similarity, training=training)
        weights = tf.nn.softmax(tf.reduce_sum(similarity, axis=0), axis=-1)

        retrieved = tf.stack(
            [
                tf.einsum("bhlm,bmhd->bhld", weights, value),
                tf.einsum("bhlm,lmd->bhld", weights, self._value_rpe(inputs)),
            ]
        )
        retrieved = self._batch_norm_retrieved_output(retrieved, training=training)
        retrieved = tf.reduce_sum(retrieved, axis=0)
        retrieved = tf.transpose(retrieved, [0, 2, 1, 3])
        return tf.reshape(retrieved, [-1, length, self.total_value_depth])

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            total_key_depth=self.total_key_depth,
            total_value_depth=self.total_value_depth,
            num_heads=self.num_heads,
            max_span=self.max_span,
            bn_config=self.bn_config,
        )
        return config


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class AxialAttention2D(tf_keras.layers.Layer):
    """Height-axis then width-axis attention on [B, H, W, C].

    Outputs ``filters * value_expansion`` channels. With ``strides`` > 1 each
    axis is subsampled right after its attention (DeepLab2
    ``AxialAttention2D``).
    """

    def __init__(
        self,
        filters: int,
        *,
        strides: int = 1,
        key_expansion: float = KEY_EXPANSION,
        value_expansion: float = VALUE_EXPANSION,
        num_heads: int = NUM_HEADS,
        max_span: int = MAX_SPAN,
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.key_expansion = float(key_expansion)
        self.value_expansion = float(value_expansion)
        self.num_heads = int(num_heads)
        self.max_span = int(max_span)
        self.bn_config = dict(bn_config) if bn_config else None
        key_depth = int(round(filters * key_expansion))
        self._value_depth = int(round(filters * value_expansion))
        common = dict(num_heads=num_heads, max_span=max_span, bn_config=bn_config)
        self._height_axis = AxialAttention(
            key_depth, self._value_depth, name="height_axis", **common
        )
        self._width_axis = AxialAttention(
            key_depth, self._value_depth, name="width_axis", **common
        )

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        _, height, width, channels = inputs.shape
        if height is None or width is None:
            raise ValueError(
                f"{self.name}: axial attention needs static spatial sizes, got "
                f"{inputs.shape}."
            )
        depth = self._value_depth
        # Height axis: columns become the batch.
        x = tf.reshape(tf.transpose(inputs, [0, 2, 1, 3]), [-1, height, channels])
        x = self._height_axis(x, training=training)
        x = tf.transpose(tf.reshape(x, [-1, width, height, depth]), [0, 2, 1, 3])
        if self.strides > 1:
            x = x[:, :: self.strides]
        strided_height = x.shape[1]
        # Width axis: rows become the batch.
        x = self._width_axis(tf.reshape(x, [-1, width, depth]), training=training)
        x = tf.reshape(x, [-1, strided_height, width, depth])
        if self.strides > 1:
            x = x[:, :, :: self.strides]
        return x

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            key_expansion=self.key_expansion,
            value_expansion=self.value_expansion,
            num_heads=self.num_heads,
            max_span=self.max_span,
            bn_config=self.bn_config,
        )
        return config
