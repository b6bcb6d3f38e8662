"""MobileNetV3 pixel encoders (``kmax_mobilenet_v3_small`` / ``_large``).

MobileNetV3-Small / -Large (Howard et al., "Searching for MobileNetV3", ICCV
2019) as DeepLab2 ``model/encoder/mobilenet.py`` builds them for
Panoptic-DeepLab; the ReMaX paper's ReMaX-T / ReMaX-S use them with kMaX.
DeepLab2 never wired them into kMaX, so the endpoint choice is ours; we keep
DeepLab2's, for two reasons:

1. It is the feature DeepLab2 (and the Google code ReMaX comes from) exposes
   for dense prediction: at strides 4, 8 and 16 the endpoint is the *expanded*
   feature of the last block at that stride -- the activated output of its
   depthwise conv, before squeeze-excite and the 1x1 projection -- richer than
   the narrow projected output (e.g. 672 vs 112 channels at stride 16 in
   -Large). At stride 32 it is the final 1x1 conv (576 / 960 channels,
   hard-swish) that the classifier head would read. At stride 2 it is the stem
   conv output (-Small) or the first block's depthwise output (-Large), both
   16 channels.
2. It reproduces the paper's model sizes. With the kMaX pixel decoder
   [1, 1, 1, 1], transformer decoder [1, 1, 1] and COCO heads, these
   endpoints give 18.6M (ReMaX-T) and 22.0M (ReMaX-S) parameters; taking the
   projected block outputs (plus the final 1x1 conv) instead gives 18.6M and
   21.8M (checked by building DeepLab2's kMaX pixel decoder on both:
   0.93M + 11.57M + 5.96M + 0.17M and 2.97M + 12.90M + 5.96M + 0.17M).

Endpoint channels / strides (``stage{k}`` is ``res{k}``; they are already
activated, as in DeepLab2):

* -Small: 16 (s2), 16 (s4), 88 (s8), 144 (s16), 576 (s32);
* -Large: 16 (s2), 72 (s4), 120 (s8), 672 (s16), 960 (s32).

Spatial size at 65: 33, 17, 9, 5, 3; at 641: 321, 161, 81, 41, 21.

Details kept from DeepLab2: convolutions without bias + BN (``norm_layer``),
DeepLab2 padding (``conv_same.py``), expansion widths rounded by
``make_divisible(., 8)``, squeeze-excite on the expanded features with a
*sigmoid* gate (Howard et al. use hard-sigmoid) and a reduced width of
``make_divisible(expanded * 0.25, 8)``, residual only for stride-1 blocks with
equal in/out widths. Drop path (absent in DeepLab2) is available on the
residual blocks, scheduled per block like ConvNeXt.

Trainable parameters (measured): -Small 927,008; -Large 2,971,952 (both equal to
DeepLab2's ``MobileNetV3Small`` / ``MobileNetV3Large``).
"""

from __future__ import annotations

import collections
from typing import Callable
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.layers.drop_path import drop_path_keep_prob_for_block
from remax_tf.model.pixel_encoder.conv_same import batch_norm_act
from remax_tf.model.pixel_encoder.conv_same import conv2d_same
from remax_tf.model.pixel_encoder.conv_same import depthwise_conv2d_same
from remax_tf.model.pixel_encoder.resnet import default_norm_layer

NormFactory = Callable[..., tf_keras.layers.Layer]

# DeepLab2 mobilenet.py / blocks.py constants.
DIVISIBLE_BY = 8
SE_RATIO = 0.25
# No DeepLab2 reference (its MobileNet has no drop path); per-block 'linear'
# as the other kMaX backbones.
DEFAULT_DROP_PATH_SCHEDULE = "linear"


@tf_keras.utils.register_keras_serializable(package="remax_tf")
def hard_swish(x: tf.Tensor) -> tf.Tensor:
    """x * ReLU6(x + 3) / 6 (Howard et al., Sec. 5.2; DeepLab2 activations.py)."""
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


# One row of the architecture tables (Howard et al. Tables 1 and 2, as
# DeepLab2's MNV3Large_BLOCK_SPECS / MNV3Small_BLOCK_SPECS): kind is 'conv'
# (conv + BN + act) or 'bneck' (inverted bottleneck); expand_ratio is the
# expanded width over the input width; endpoint marks the last layer at a
# stride, whose feature becomes the next endpoint.
BlockSpec = collections.namedtuple(
    "BlockSpec",
    [
        "kind",
        "kernel_size",
        "strides",
        "filters",
        "activation",
        "use_se",
        "expand_ratio",
        "endpoint",
    ],
)
_HS = "hard_swish"

MOBILENET_V3_SMALL_SPECS = (
    BlockSpec("conv", 3, 2, 16, _HS, False, None, True),
    BlockSpec("bneck", 3, 2, 16, "relu", True, 1.0, True),
    BlockSpec("bneck", 3, 2, 24, "relu", False, 72.0 / 16, False),
    BlockSpec("bneck", 3, 1, 24, "relu", False, 88.0 / 24, True),
    BlockSpec("bneck", 5, 2, 40, _HS, True, 4.0, False),
    BlockSpec("bneck", 5, 1, 40, _HS, True, 6.0, False),
    BlockSpec("bneck", 5, 1, 40, _HS, True, 6.0, False),
    BlockSpec("bneck", 5, 1, 48, _HS, True, 3.0, False),
    BlockSpec("bneck", 5, 1, 48, _HS, True, 3.0, True),
    BlockSpec("bneck", 5, 2, 96, _HS, True, 6.0, False),
    BlockSpec("bneck", 5, 1, 96, _HS, True, 6.0, False),
    BlockSpec("bneck", 5, 1, 96, _HS, True, 6.0, False),
    BlockSpec("conv", 1, 1, 576, _HS, False, None, True),
)

MOBILENET_V3_LARGE_SPECS = (
    BlockSpec("conv", 3, 2, 16, _HS, False, None, False),
    BlockSpec("bneck", 3, 1, 16, "relu", False, 1.0, True),
    BlockSpec("bneck", 3, 2, 24, "relu", False, 4.0, False),
    BlockSpec("bneck", 3, 1, 24, "relu", False, 3.0, True),
    BlockSpec("bneck", 5, 2, 40, "relu", True, 3.0, False),
    BlockSpec("bneck", 5, 1, 40, "relu", True, 3.0, False),
    BlockSpec("bneck", 5, 1, 40, "relu", True, 3.0, True),
    BlockSpec("bneck", 3, 2, 80, _HS, False, 6.0, False),
    BlockSpec("bneck", 3, 1, 80, _HS, False, 2.5, False),
    BlockSpec("bneck", 3, 1, 80, _HS, False, 2.3, False),
    BlockSpec("bneck", 3, 1, 80, _HS, False, 2.3, False),
    BlockSpec("bneck", 3, 1, 112, _HS, True, 6.0, False),
    BlockSpec("bneck", 3, 1, 112, _HS, True, 6.0, True),
    BlockSpec("bneck", 5, 2, 160, _HS, True, 6.0, False),
    BlockSpec("bneck", 5, 1, 160, _HS, True, 6.0, False),
    BlockSpec("bneck", 5, 1, 160, _HS, True, 6.0, False),
    BlockSpec("conv", 1, 1, 960, _HS, False, None, True),
)


def make_divisible(value: float, divisor: int = DIVISIBLE_BY) -> int:
    """Rounds a width to a multiple of ``divisor``, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def _activation(name: str):
    return hard_swish if name == _HS else name


def _squeeze_excite(x: tf.Tensor, *, name: str) -> tf.Tensor:
    channels = x.shape[-1]
    reduced = make_divisible(max(1, int(channels * SE_RATIO)))
    s = tf_keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = tf_keras.layers.Conv2D(
        reduced,
        1,
        activation="relu",
        kernel_initializer="he_normal",
        name=f"{name}_reduce",
    )(s)
    s = tf_keras.layers.Conv2D(
        channels,
        1,
        activation="sigmoid",
        kernel_initializer="he_normal",
        name=f"{name}_expand",
    )(s)
    return tf_keras.layers.Multiply(name=f"{name}_gate")([x, s])


def inverted_bottleneck(
    x: tf.Tensor,
    spec: BlockSpec,
    *,
    drop_path_keep_prob: float,
    norm_layer: NormFactory,
    name: str,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One MobileNetV3 block; returns (output, activated depthwise feature)."""
    in_filters = x.shape[-1]
    activation = _activation(spec.activation)
    y = x
    if spec.expand_ratio > 1:
        expanded = make_divisible(in_filters * spec.expand_ratio)
        y = conv2d_same(y, expanded, 1, name=f"{name}_expand")
        y = batch_norm_act(y, norm_layer, name=f"{name}_expand")
        y = tf_keras.layers.Activation(activation, name=f"{name}_expand_act")(y)
    y = depthwise_conv2d_same(
        y, spec.kernel_size, strides=spec.strides, name=f"{name}_depthwise"
    )
    y = batch_norm_act(y, norm_layer, name=f"{name}_depthwise")
    y = tf_keras.layers.Activation(activation, name=f"{name}_depthwise_act")(y)
    depthwise_feature = y
    if spec.use_se:
        y = _squeeze_excite(y, name=f"{name}_se")
    y = conv2d_same(y, spec.filters, 1, name=f"{name}_project")
    y = batch_norm_act(y, norm_layer, name=f"{name}_project")
    if spec.strides == 1 and in_filters == spec.filters:
        if drop_path_keep_prob < 1.0:
            y = DropPath(drop_path_keep_prob, name=f"{name}_drop_path")(y)
        y = tf_keras.layers.Add(name=f"{name}_add")([x, y])
    return y, depthwise_feature


def build_mobilenet_v3(
    specs: Sequence[BlockSpec],
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    drop_path_keep_prob: float = 1.0,
    drop_path_schedule: str = DEFAULT_DROP_PATH_SCHEDULE,
    norm_layer: Optional[NormFactory] = None,
    name: str = "mobilenet_v3",
) -> tf_keras.Model:
    """A MobileNetV3 returning stage1..5 / res1..5 (see the module docstring)."""
    if sum(spec.endpoint for spec in specs) != 5:
        raise ValueError(f"{name}: the block specs must mark exactly 5 endpoints.")
    norm_layer = norm_layer or default_norm_layer()
    input_shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
    images = tf_keras.Input(shape=input_shape, name="images")
    num_bnecks = sum(spec.kind == "bneck" for spec in specs)

    endpoints = {}
    x = images
    bneck_index = 0
    for index, spec in enumerate(specs):
        layer_name = f"block{index}"
        if spec.kind == "conv":
            x = conv2d_same(
                x,
                spec.filters,
                spec.kernel_size,
                strides=spec.strides,
                name=layer_name,
            )
            x = batch_norm_act(x, norm_layer, name=layer_name)
            x = tf_keras.layers.Activation(
                _activation(spec.activation), name=f"{layer_name}_act"
            )(x)
            feature = x
        elif spec.kind == "bneck":
            keep_prob = drop_path_keep_prob_for_block(
                bneck_index,
                max(num_bnecks - 1, 1),
                drop_path_keep_prob,
                drop_path_schedule,
            )
            x, feature = inverted_bottleneck(
                x,
                spec,
                drop_path_keep_prob=keep_prob,
                norm_layer=norm_layer,
                name=layer_name,
            )
            bneck_index += 1
        else:
            raise ValueError(f"{name}: unknown block kind {spec.kind!r} at {index}.")
        if spec.endpoint:
            level = len(endpoints) // 2 + 1
            endpoints[f"stage{level}"] = feature
            endpoints[f"res{level}"] = feature
    return tf_keras.Model(inputs=images, outputs=endpoints, name=name)


def build_small(**kwargs) -> tf_keras.Model:
    """``kmax_mobilenet_v3_small``."""
    return build_mobilenet_v3(
        MOBILENET_V3_SMALL_SPECS, name="kmax_mobilenet_v3_small", **kwargs
    )


def build_large(**kwargs) -> tf_keras.Model:
    """``kmax_mobilenet_v3_large``."""
    return build_mobilenet_v3(
        MOBILENET_V3_LARGE_SPECS, name="kmax_mobilenet_v3_large", **kwargs
    )
