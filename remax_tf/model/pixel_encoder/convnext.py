"""ConvNeXt pixel encoders of kMaX-DeepLab (``kmax_convnext_{tiny,...,large}``).

ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022) as DeepLab2
``model/pixel_encoder/convnext.py`` builds it for kMaX, i.e. with
``zero_padding_for_downstream=True``:

* stem: zero-pad (1, 2) on each spatial axis, 4x4 stride-4 conv (bias),
  LayerNorm; downsampling: zero-pad (0, 1), LayerNorm, 2x2 stride-2 conv. The
  padding makes a 32k+1 input land on ceil(H / s) (65 -> 17, 9, 5, 3);
* block: 7x7 depthwise conv (bias), LayerNorm, Dense 4C, GELU (exact), Dense C,
  layer scale (init 1e-6), drop path, residual add. No BatchNorm, so
  ``norm_layer`` is ignored;
* conv / dense kernels ~ truncated normal(0.02), biases 0, LayerNorm eps 1e-6;
* no final norm or classification head.

The depthwise conv is a ``DepthwiseConv2D`` (kernel [7, 7, C, 1]); DeepLab2
uses ``Conv2D(groups=C)`` (kernel [7, 7, 1, C]); same op and parameter count,
the kernel of a DeepLab2 checkpoint needs a reshape.

Endpoints (DeepLab2 naming; ``res{k}`` = GELU(``stage{k}``)). Unlike the
ResNets, ``stage1`` is the *stem* output at stride 4 (ConvNeXt has no
stride-2 feature), then stage2..5 at strides 4, 8, 16, 32. Channels: C0, C0,
C1, C2, C3 with (C0..C3) = (96, 192, 384, 768) for tiny / small, (128, 256,
512, 1024) for base, (192, 384, 768, 1536) for large. Spatial size at 65: 17,
17, 9, 5, 3; at 641: 161, 161, 81, 41, 21.

Trainable parameters (measured): tiny 27,818,592; small 49,453,152;
base 87,564,416; large 196,227,264.
"""

from __future__ import annotations

from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.layers.drop_path import drop_path_keep_prob_for_block
from remax_tf.model.layers.layer_scale import LayerScale

# DeepLab2 convnext.get_model: (blocks per stage, channels per stage).
CONVNEXT_VARIANTS = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
}
# DeepLab2 convnext.py constants.
LAYER_NORM_EPSILON = 1e-6
LAYER_SCALE_INIT_VALUE = 1e-6
INIT_STDDEV = 0.02
DEPTHWISE_KERNEL_SIZE = 7
MLP_EXPANSION = 4
STEM_STRIDE = 4
# zero_padding_for_downstream=True: (before, after) padding of the stem and of
# each 2x downsampling, so 32k+1 inputs give ceil(H / stride).
STEM_PADDING = (1, 2)
DOWNSAMPLE_PADDING = (0, 1)
# DeepLab2 ConvNeXt always spaces keep probabilities linearly over the blocks.
DEFAULT_DROP_PATH_SCHEDULE = "linear"


def _kernel_init() -> tf_keras.initializers.Initializer:
    return tf_keras.initializers.TruncatedNormal(stddev=INIT_STDDEV)


def _layer_norm(name: str) -> tf_keras.layers.Layer:
    return tf_keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def convnext_block(x: tf.Tensor, *, drop_path_keep_prob: float, name: str) -> tf.Tensor:
    """One ConvNeXt block (channels preserved)."""
    channels = x.shape[-1]
    y = tf_keras.layers.DepthwiseConv2D(
        DEPTHWISE_KERNEL_SIZE,
        padding="same",
        use_bias=True,
        depthwise_initializer=_kernel_init(),
        name=f"{name}_depthwise_conv",
    )(x)
    y = _layer_norm(f"{name}_norm")(y)
    y = tf_keras.layers.Dense(
        MLP_EXPANSION * channels,
        kernel_initializer=_kernel_init(),
        name=f"{name}_pointwise_conv1",
    )(y)
    y = tf_keras.layers.Activation("gelu", name=f"{name}_gelu")(y)
    y = tf_keras.layers.Dense(
        channels, kernel_initializer=_kernel_init(), name=f"{name}_pointwise_conv2"
    )(y)
    y = LayerScale(LAYER_SCALE_INIT_VALUE, name=f"{name}_layer_scale")(y)
    if drop_path_keep_prob < 1.0:
        y = DropPath(drop_path_keep_prob, name=f"{name}_drop_path")(y)
    return tf_keras.layers.Add(name=f"{name}_add")([x, y])


def _block_keep_prob(
    block_index: int, total_blocks: int, keep_prob: float, schedule: str
) -> float:
    # DeepLab2 ConvNeXt: tf.linspace(1.0, keep_prob, total_blocks) over all
    # blocks, i.e. the 'linear' formula with the last block at total - 1.
    return drop_path_keep_prob_for_block(
        block_index, max(total_blocks - 1, 1), keep_prob, schedule
    )


def build_convnext(
    depths: Sequence[int],
    dims: Sequence[int],
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    drop_path_keep_prob: float = 1.0,
    drop_path_schedule: str = DEFAULT_DROP_PATH_SCHEDULE,
    name: str = "convnext",
) -> tf_keras.Model:
    """A ConvNeXt returning stage1..5 / res1..5 (see the module docstring).

    Args:
      depths: Blocks in each of the 4 stages.
      dims: Channels of each of the 4 stages.
      input_shape: [H, W, 3], or None for any size.
      drop_path_keep_prob: Keep probability of the last block.
      drop_path_schedule: 'linear' (DeepLab2's: 1.0 at the first block down to
        ``drop_path_keep_prob`` at the last) or 'constant'.
      name: Model name.
    """
    if len(depths) != 4 or len(dims) != 4:
        raise ValueError(
            f"ConvNeXt needs 4 stages, got depths={depths} and dims={dims}."
        )
    input_shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
    images = tf_keras.Input(shape=input_shape, name="images")
    endpoints = {}

    x = tf_keras.layers.ZeroPadding2D((STEM_PADDING, STEM_PADDING), name="stem_pad")(
        images
    )
    x = tf_keras.layers.Conv2D(
        dims[0],
        STEM_STRIDE,
        strides=STEM_STRIDE,
        kernel_initializer=_kernel_init(),
        name="stem_conv",
    )(x)
    x = _layer_norm("stem_norm")(x)
    endpoints["stage1"] = x
    endpoints["res1"] = tf_keras.layers.Activation("gelu", name="res1")(x)

    total_blocks = sum(depths)
    block_offset = 0
    for stage_index, (depth, channels) in enumerate(zip(depths, dims)):
        if stage_index > 0:
            prefix = f"downsample{stage_index}"
            x = tf_keras.layers.ZeroPadding2D(
                (DOWNSAMPLE_PADDING, DOWNSAMPLE_PADDING), name=f"{prefix}_pad"
            )(x)
            x = _layer_norm(f"{prefix}_norm")(x)
            x = tf_keras.layers.Conv2D(
                channels,
                2,
                strides=2,
                kernel_initializer=_kernel_init(),
                name=f"{prefix}_conv",
            )(x)
        for block_index in range(depth):
            x = convnext_block(
                x,
                drop_path_keep_prob=_block_keep_prob(
                    block_offset + block_index,
                    total_blocks,
                    drop_path_keep_prob,
                    drop_path_schedule,
                ),
                name=f"stage{stage_index}_block{block_index}",
            )
        block_offset += depth
        endpoint = stage_index + 2
        endpoints[f"stage{endpoint}"] = x
        endpoints[f"res{endpoint}"] = tf_keras.layers.Activation(
            "gelu", name=f"res{endpoint}"
        )(x)
    return tf_keras.Model(inputs=images, outputs=endpoints, name=name)


def _build_variant(variant: str, **kwargs) -> tf_keras.Model:
    # norm_layer is part of the common builder signature; ConvNeXt has no BN.
    kwargs.pop("norm_layer", None)
    depths, dims = CONVNEXT_VARIANTS[variant]
    return build_convnext(depths, dims, name=f"kmax_convnext_{variant}", **kwargs)


def build_tiny(**kwargs) -> tf_keras.Model:
    """``kmax_convnext_tiny``."""
    return _build_variant("tiny", **kwargs)


def build_small(**kwargs) -> tf_keras.Model:
    """``kmax_convnext_small``."""
    return _build_variant("small", **kwargs)


def build_base(**kwargs) -> tf_keras.Model:
    """``kmax_convnext_base``."""
    return _build_variant("base", **kwargs)


def build_large(**kwargs) -> tf_keras.Model:
    """``kmax_convnext_large``."""
    return _build_variant("large", **kwargs)
