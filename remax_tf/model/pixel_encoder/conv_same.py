"""Convolutions with DeepLab2's padding convention, as functional-API helpers.

DeepLab2 (``model/layers/convolutions.py``, ``Conv2DSame``) pads a strided
convolution explicitly and symmetrically, ``(k - 1) // 2`` before and the rest
after, then runs a 'valid' convolution; a stride-1 convolution uses 'same'.
On 32k+1 inputs this equals Keras' 'same' padding and gives ``ceil(H / s)``
at every stride (65 -> 33 -> 17 -> 9 -> 5 -> 3), kernels centred on the corner
pixels. On other sizes (e.g. even ones) Keras derives the padding from the
input size and puts all of an odd total at the bottom-right, shifting the
sampling grid by one pixel; DeepLab2's padding does not depend on the size.

The helpers take a Keras tensor and return one; the layers they create are
named ``{name}_pad`` and ``{name}``.
"""

from __future__ import annotations

from typing import Callable
from typing import Optional

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.conv_bn_act import deeplab2_same_padding

# DeepLab2 Conv2DSame: kernel_initializer='he_normal' for every conv.
HE_NORMAL = "he_normal"


def _pad_if_strided(
    x: tf.Tensor, kernel_size: int, strides: int, name: str
) -> tuple[tf.Tensor, str]:
    pad, padding = deeplab2_same_padding(kernel_size, strides, name=f"{name}_pad")
    return (x if pad is None else pad(x)), padding


def conv2d_same(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    use_bias: bool = False,
    kernel_initializer: str | tf_keras.initializers.Initializer = HE_NORMAL,
) -> tf.Tensor:
    """A 2D convolution padded as DeepLab2's ``Conv2DSame``."""
    x, padding = _pad_if_strided(x, kernel_size, strides, name)
    return tf_keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
    )(x)


def depthwise_conv2d_same(
    x: tf.Tensor,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    use_bias: bool = False,
    kernel_initializer: str | tf_keras.initializers.Initializer = HE_NORMAL,
) -> tf.Tensor:
    """A depthwise convolution padded as DeepLab2's ``DepthwiseConv2DSame``."""
    x, padding = _pad_if_strided(x, kernel_size, strides, name)
    return tf_keras.layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        depthwise_initializer=kernel_initializer,
        name=name,
    )(x)


def batch_norm_act(
    x: tf.Tensor,
    norm_layer: Callable[..., tf_keras.layers.Layer],
    *,
    name: str,
    activation: Optional[str] = None,
    gamma_initializer: str = "ones",
) -> tf.Tensor:
    """``norm_layer`` (a BatchNormalization factory) then an optional activation."""
    x = norm_layer(name=f"{name}_bn", gamma_initializer=gamma_initializer)(x)
    if activation is not None:
        x = tf_keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x
