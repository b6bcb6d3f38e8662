"""ResNet-50 pixel encoder of kMaX-DeepLab (``kmax_resnet50``).

The network of DeepLab2 ``model/pixel_encoder/axial_resnet.py`` ('resnet50':
``AxialResNet`` with ``backbone_type='resnet'``, no axial attention, output
stride 32, ``classification_mode=True``), which differs from torchvision /
Model Garden ResNet-50 in ways that matter for pretrained weights and feature
alignment:

* stem: one 7x7 stride-2 convolution (no bias) + BN, *no* max-pool; the
  stride-4 reduction happens in the first 3x3 convolution of stage 2;
* every convolution pads as DeepLab2 ``Conv2DSame`` (see ``conv_same.py``), so
  a 32k+1 input gives ``ceil(H / s)`` at each stride s;
* a block receives the *pre-activation* output of the previous block, applies
  ReLU itself, and returns ``shortcut + branch`` without a final ReLU;
  projection shortcuts (1x1 conv, stride of the block, + BN) appear only where
  the channel count changes (the first block of each stage);
* the BN after the last 1x1 conv of each block starts with gamma = 0;
* drop path on the residual branch of blocks whose input stride is >= 16.

Parameters: 23,508,032 trainable, the same as DeepLab2's kMaX-R50 encoder
(``tests/testdata/reference/deeplab2_kmax_r50_params.json``).

Endpoints (DeepLab2 naming). ``stage{k}`` is the pre-activation output at
stride 2**k, ``res{k}`` = ReLU(``stage{k}``); the kMaX pixel decoder reads the
``stage`` endpoints. Channels: stage1 64, stage2 256, stage3 512, stage4 1024,
stage5 2048. Spatial size at a 65x65 input: 33, 17, 9, 5, 3; at 641x641: 321,
161, 81, 41, 21.
"""

from __future__ import annotations

import functools
import math
from typing import Callable
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.layers.drop_path import drop_path_keep_prob_for_block
from remax_tf.model.pixel_encoder.conv_same import batch_norm_act
from remax_tf.model.pixel_encoder.conv_same import conv2d_same

# DeepLab2 encoder/axial_resnet.py AxialResNet defaults: blocks per stage 2..5,
# stem width 64, stage widths 32 * input stride (64, 128, 256, 512) with a
# bottleneck expansion of 4.
RESNET50_NUM_BLOCKS = (3, 4, 6, 3)
STEM_CHANNELS = 64
STEM_KERNEL_SIZE = 7
BOTTLENECK_EXPANSION = 4
# DeepLab2 layers/axial_block_groups.py BlockGroup: drop path only where the
# original-ResNet stride is >= 16, scheduled over 4 stages.
DROP_PATH_BEYOND_STRIDE = 16
DROP_PATH_NUM_STAGES = 4
# DeepLab2 pixel_encoder/axial_resnet.get_model hard-codes 'linear' for kMaX.
DEFAULT_DROP_PATH_SCHEDULE = "linear"
# DeepLab2 trainer.proto defaults (batchnorm_momentum, batchnorm_epsilon).
BATCHNORM_MOMENTUM = 0.99
BATCHNORM_EPSILON = 1e-3

NormFactory = Callable[..., tf_keras.layers.Layer]


def default_norm_layer() -> NormFactory:
    """Plain BatchNormalization with DeepLab2's default momentum / epsilon."""
    return functools.partial(
        tf_keras.layers.BatchNormalization,
        momentum=BATCHNORM_MOMENTUM,
        epsilon=BATCHNORM_EPSILON,
    )


def _stage_keep_prob(original_stride: int, keep_prob: float, schedule: str) -> float:
    # DeepLab2 BlockGroup: stage index log2(stride) - 1, counted over 4 stages,
    # and no drop path below DROP_PATH_BEYOND_STRIDE.
    if original_stride < DROP_PATH_BEYOND_STRIDE:
        return 1.0
    stage = int(round(math.log2(original_stride))) - 1
    return drop_path_keep_prob_for_block(
        stage, DROP_PATH_NUM_STAGES, keep_prob, schedule
    )


def bottleneck_block(
    activated: tf.Tensor,
    filters: int,
    *,
    strides: int,
    drop_path_keep_prob: float,
    norm_layer: NormFactory,
    name: str,
) -> tf.Tensor:
    """One DeepLab2 bottleneck block on an already activated input.

    Args:
      activated: The ReLU of the previous block's output, [B, H, W, C].
      filters: Bottleneck width; the block outputs ``4 * filters`` channels.
      strides: Stride of the 3x3 conv (and of the projection shortcut).
      drop_path_keep_prob: Keep probability of the residual branch.
      norm_layer: BatchNormalization factory.
      name: Prefix of the block's layer names.

    Returns:
      The pre-activation block output ``shortcut + branch``.
    """
    out_channels = filters * BOTTLENECK_EXPANSION
    x = conv2d_same(activated, filters, 1, name=f"{name}_conv1")
    x = batch_norm_act(x, norm_layer, name=f"{name}_conv1", activation="relu")
    x = conv2d_same(x, filters, 3, strides=strides, name=f"{name}_conv2")
    x = batch_norm_act(x, norm_layer, name=f"{name}_conv2", activation="relu")
    x = conv2d_same(x, out_channels, 1, name=f"{name}_conv3")
    # Zero-initialised gamma: each block starts as the identity (DeepLab2
    # AxialBlock, bn_gamma_initializer='zeros' on conv3_bn).
    x = batch_norm_act(x, norm_layer, name=f"{name}_conv3", gamma_initializer="zeros")
    shortcut = activated
    if activated.shape[-1] != out_channels:
        shortcut = conv2d_same(
            activated, out_channels, 1, strides=strides, name=f"{name}_shortcut"
        )
        shortcut = batch_norm_act(shortcut, norm_layer, name=f"{name}_shortcut")
    elif strides != 1:
        # DeepLab2 subsamples an identity shortcut as t[:, ::s, ::s]; a 1x1
        # 'valid' pooling is the same op. (ResNet-50 always projects here.)
        shortcut = tf_keras.layers.MaxPooling2D(
            pool_size=1, strides=strides, name=f"{name}_subsample"
        )(activated)

    if drop_path_keep_prob < 1.0:
        x = DropPath(drop_path_keep_prob, name=f"{name}_drop_path")(x)
    return tf_keras.layers.Add(name=f"{name}_add")([shortcut, x])


def build_resnet(
    num_blocks: Sequence[int],
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    drop_path_keep_prob: float = 1.0,
    drop_path_schedule: str = DEFAULT_DROP_PATH_SCHEDULE,
    norm_layer: Optional[NormFactory] = None,
    name: str = "resnet",
) -> tf_keras.Model:
    """A DeepLab2-style bottleneck ResNet returning stage1..5 / res1..5.

    Args:
      num_blocks: Blocks in stages 2..5 (strides 4..32).
      input_shape: [H, W, 3] of the input, or None for any size.
      drop_path_keep_prob: Keep probability of the deepest blocks.
      drop_path_schedule: 'constant' or 'linear' over the 4 stages (DeepLab2's
        kMaX always uses 'linear').
      norm_layer: BatchNormalization factory; None uses :func:`default_norm_layer`.
      name: Model name.

    Returns:
      A functional ``tf_keras.Model`` mapping images in [-1, 1] to the endpoint
      dict.
    """
    if len(num_blocks) != 4:
        raise ValueError(
            f"num_blocks must list the blocks of the 4 stages 2..5, got {num_blocks}."
        )
    norm_layer = norm_layer or default_norm_layer()
    input_shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
    images = tf_keras.Input(shape=input_shape, name="images")

    endpoints = {}
    x = conv2d_same(images, STEM_CHANNELS, STEM_KERNEL_SIZE, strides=2, name="stem")
    x = batch_norm_act(x, norm_layer, name="stem")
    endpoints["stage1"] = x
    activated = tf_keras.layers.ReLU(name="res1")(x)
    endpoints["res1"] = activated

    input_stride = 2
    for stage_index, stage_blocks in enumerate(num_blocks):
        stage = stage_index + 2
        # Stage widths 64, 128, 256, 512 = 32 * the stage's input stride.
        filters = 32 * input_stride
        for block_index in range(stage_blocks):
            # The first block of each stage halves the resolution; DeepLab2
            # counts its drop-path stage from the stride *before* it.
            current_stride = input_stride if block_index == 0 else input_stride * 2
            x = bottleneck_block(
                activated,
                filters,
                strides=2 if block_index == 0 else 1,
                drop_path_keep_prob=_stage_keep_prob(
                    current_stride, drop_path_keep_prob, drop_path_schedule
                ),
                norm_layer=norm_layer,
                name=f"stage{stage}_block{block_index + 1}",
            )
            activated = tf_keras.layers.ReLU(
                name=f"res{stage}" if block_index == stage_blocks - 1 else None
            )(x)
        endpoints[f"stage{stage}"] = x
        endpoints[f"res{stage}"] = activated
        input_stride *= 2
    return tf_keras.Model(inputs=images, outputs=endpoints, name=name)


def build_resnet50(**kwargs) -> tf_keras.Model:
    """``kmax_resnet50``: DeepLab2's kMaX ResNet-50 (see the module docstring)."""
    return build_resnet(RESNET50_NUM_BLOCKS, name="kmax_resnet50", **kwargs)
