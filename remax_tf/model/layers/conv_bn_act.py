"""Convolution + batch norm + activation units with DeepLab2's padding.

DeepLab2 (``model/layers/convolutions.py``) pads a *strided* convolution
symmetrically by ``(k_eff - 1) // 2`` before and the rest after, then runs a
'valid' convolution, so a 32k+1 input keeps its corner pixels aligned at every
stride; stride-1 convolutions use 'same'. Kernels are He-normal unless stated.
Sub-layer names (``conv``, ``depthwise_conv``, ``batch_norm``, ``depthwise``,
``pointwise``) follow DeepLab2 so variable names read the same.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Optional
from typing import Tuple

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.activations import get_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.batch_norm import batch_norm

# DeepLab2 Conv2DSame / Conv1D default kernel initializer.
DEFAULT_KERNEL_INITIALIZER = "he_normal"


def serialize_initializer(initializer: Any) -> Any:
    """A JSON-friendly form of a Keras initializer (str, dict or instance)."""
    if isinstance(initializer, str):
        return initializer
    return tf_keras.initializers.serialize(tf_keras.initializers.get(initializer))


def _symmetric_padding(kernel_size: int, atrous_rate: int) -> tuple:
    effective = kernel_size + (kernel_size - 1) * (atrous_rate - 1)
    total = effective - 1
    return (total // 2, total - total // 2)


def deeplab2_same_padding(
    kernel_size: int, strides: int, atrous_rate: int = 1, name: str = "zeropad"
) -> Tuple[Optional[tf_keras.layers.Layer], str]:
    """DeepLab2's "same" convolution (``Conv2DSame``): strided convolutions
    pad symmetrically first and convolve "valid"; stride 1 uses Keras' "same".
    Returns (the padding layer or None, the convolution's padding mode)."""
    if strides == 1:
        return None, "same"
    pad = _symmetric_padding(kernel_size, atrous_rate)
    return tf_keras.layers.ZeroPadding2D((pad, pad), name=name), "valid"


class _ConvBNActBase(tf_keras.layers.Layer):
    """Shared tail: optional BN and activation after a convolution.

    Keyword args of every conv + BN + act layer: ``use_bias`` (False),
    ``use_bn`` (True), ``bn_gamma_initializer`` ("ones"), ``activation``
    ("none"), ``bn_config`` (None).
    """

    def __init__(
        self,
        *,
        use_bias: bool = False,
        use_bn: bool = True,
        bn_gamma_initializer: Any = "ones",
        activation: str = "none",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if use_bn and use_bias:
            raise ValueError(
                f"{self.name}: use_bias=True with use_bn=True adds a redundant "
                "bias; set use_bias=False."
            )
        self.use_bn = use_bn
        self.use_bias = use_bias
        self.activation = check_activation(activation)
        self.bn_gamma_initializer = serialize_initializer(bn_gamma_initializer)
        self.bn_config = dict(bn_config) if bn_config else None
        self._activation_fn = get_activation(activation)
        self._batch_norm = (
            batch_norm(
                bn_config,
                name="batch_norm",
                gamma_initializer=tf_keras.initializers.get(bn_gamma_initializer),
            )
            if use_bn
            else None
        )

    def _finish(self, x: tf.Tensor, training) -> tf.Tensor:
        if self._batch_norm is not None:
            x = self._batch_norm(x, training=training)
        return self._activation_fn(x)

    def _base_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            use_bn=self.use_bn,
            use_bias=self.use_bias,
            activation=self.activation,
            bn_gamma_initializer=self.bn_gamma_initializer,
            bn_config=self.bn_config,
        )
        return config


class _StridedConvBNAct(_ConvBNActBase):
    """A k x k convolution with DeepLab2's padding, then BN and activation.

    Keyword args: ``strides`` (1), ``atrous_rate`` (1) and those of
    :class:`_ConvBNActBase`. A subclass creates
    its convolution from :meth:`_conv_options` under its own attribute name
    (the checkpoint path: ``_conv``, ``_depthwise_conv``) and applies it in
    :meth:`_convolve`.
    """

    def __init__(
        self,
        kernel_size: int,
        *,
        strides: int = 1,
        atrous_rate: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.atrous_rate = int(atrous_rate)
        self._pad, self._padding = deeplab2_same_padding(
            self.kernel_size, self.strides, self.atrous_rate
        )

    def _conv_options(self) -> Dict[str, Any]:
        return dict(
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self._padding,
            dilation_rate=self.atrous_rate,
            use_bias=self.use_bias,
        )

    def _convolve(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        x = inputs if self._pad is None else self._pad(inputs)
        return self._finish(self._convolve(x), training)

    def _base_config(self) -> Dict[str, Any]:
        config = super()._base_config()
        config.update(
            kernel_size=self.kernel_size,
            strides=self.strides,
            atrous_rate=self.atrous_rate,
        )
        return config


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class Conv2DBNAct(_StridedConvBNAct):
    """Conv2D (DeepLab2 ``Conv2DSame`` padding), optional BN, activation.

    ``filters``, ``kernel_size``, ``kernel_initializer`` (He normal) and the
    keyword args of :class:`_StridedConvBNAct`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        *,
        kernel_initializer: Any = DEFAULT_KERNEL_INITIALIZER,
        **kwargs: Any,
    ) -> None:
        super().__init__(kernel_size, **kwargs)
        self.filters = int(filters)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self._conv = tf_keras.layers.Conv2D(
            self.filters,
            kernel_initializer=tf_keras.initializers.get(kernel_initializer),
            name="conv",
            **self._conv_options(),
        )

    def _convolve(self, x: tf.Tensor) -> tf.Tensor:
        return self._conv(x)

    def get_config(self) -> Dict[str, Any]:
        config = self._base_config()
        config.update(filters=self.filters, kernel_initializer=self.kernel_initializer)
        return config


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class DepthwiseConv2DBNAct(_StridedConvBNAct):
    """DepthwiseConv2D (DeepLab2 padding), optional BN, activation.

    ``kernel_size`` and the keyword args of :class:`_StridedConvBNAct`.
    """

    def __init__(self, kernel_size: int, **kwargs: Any) -> None:
        super().__init__(kernel_size, **kwargs)
        # DeepLab2 DepthwiseConv2DSame keeps Keras' default (glorot_uniform)
        # depthwise initializer.
        self._depthwise_conv = tf_keras.layers.DepthwiseConv2D(
            name="depthwise_conv", **self._conv_options()
        )

    def _convolve(self, x: tf.Tensor) -> tf.Tensor:
        return self._depthwise_conv(x)

    def get_config(self) -> Dict[str, Any]:
        return self._base_config()


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class SeparableConv2DBNAct(tf_keras.layers.Layer):
    """Depthwise k x k conv + BN + act, then pointwise 1x1 conv + BN + act.

    DeepLab2 ``SeparableConv2DSame``: both halves carry the BN and the
    activation.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        *,
        strides: int = 1,
        atrous_rate: int = 1,
        activation: str = "none",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.atrous_rate = int(atrous_rate)
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._depthwise = DepthwiseConv2DBNAct(
            kernel_size,
            strides=strides,
            atrous_rate=atrous_rate,
            activation=activation,
            bn_config=bn_config,
            name="depthwise",
        )
        self._pointwise = Conv2DBNAct(
            filters, 1, activation=activation, bn_config=bn_config, name="pointwise"
        )

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        return self._pointwise(
            self._depthwise(inputs, training=training), training=training
        )

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            atrous_rate=self.atrous_rate,
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class Conv1DBNAct(_ConvBNActBase):
    """A 1x1 convolution over [B, L, C] tokens, optional BN, activation.

    DeepLab2 ``Conv1D`` (used by every transformer-decoder projection).
    ``filters``, ``kernel_initializer`` (He normal) and the keyword args of
    :class:`_ConvBNActBase`.
    """

    def __init__(
        self,
        filters: int,
        *,
        kernel_initializer: Any = DEFAULT_KERNEL_INITIALIZER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_initializer = serialize_initializer(kernel_initializer)
        self._conv = tf_keras.layers.Conv1D(
            self.filters,
            1,
            use_bias=self.use_bias,
            kernel_initializer=tf_keras.initializers.get(kernel_initializer),
            name="conv",
        )

    def call(self, inputs: tf.Tensor, training=None) -> tf.Tensor:
        return self._finish(self._conv(inputs), training)

    def get_config(self) -> Dict[str, Any]:
        config = self._base_config()
        config.update(filters=self.filters, kernel_initializer=self.kernel_initializer)
        return config


def truncated_normal(stddev: float) -> Dict[str, Any]:
    """Serialised TruncatedNormal(stddev) for ``kernel_initializer`` args."""
    return serialize_initializer(tf_keras.initializers.TruncatedNormal(stddev=stddev))
