"""Pixel encoders (backbones) of kMaX-DeepLab, built by exact name.

Contract of every encoder (DeepLab2's): ``encoder(images, training=...)`` takes
images already scaled to [-1, 1], [B, H, W, 3] (H, W = 32k + 1 for DeepLab2's
alignment), and returns a dict of endpoints ``stage1`` .. ``stage5`` (the
non-activated stage outputs the kMaX pixel decoder reads) and ``res1`` ..
``res5`` (their activated versions, as DeepLab2 names them). Per-backbone
channels and strides are in each module's docstring and in the table below.

=========================  =====================================  =============
name                       channels stage1..stage5                strides
=========================  =====================================  =============
kmax_resnet50              64, 256, 512, 1024, 2048               2,4,8,16,32
kmax_convnext_tiny/small   96, 96, 192, 384, 768                  4,4,8,16,32
kmax_convnext_base         128, 128, 256, 512, 1024               4,4,8,16,32
kmax_convnext_large        192, 192, 384, 768, 1536               4,4,8,16,32
kmax_mobilenet_v3_small    16, 16, 88, 144, 576                   2,4,8,16,32
kmax_mobilenet_v3_large    16, 72, 120, 672, 960                  2,4,8,16,32
=========================  =====================================  =============
"""

from __future__ import annotations

import importlib
from typing import Callable
from typing import Optional
from typing import Sequence

import tf_keras

from remax_tf.model.pixel_encoder.registry import KMAX_BACKBONES
from remax_tf.model.pixel_encoder.registry import known_backbones
from remax_tf.model.pixel_encoder.weights import load_pretrained_weights

__all__ = ["build_pixel_encoder", "known_backbones"]


def _import_builder(name: str) -> Callable[..., tf_keras.Model]:
    try:
        target = KMAX_BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"Unknown pixel encoder (backbone.name) {name!r}; known: "
            f"{', '.join(known_backbones())}."
        ) from None
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_pixel_encoder(
    name: str,
    *,
    input_shape: Optional[Sequence[Optional[int]]] = None,
    drop_path_keep_prob: float = 1.0,
    drop_path_schedule: Optional[str] = None,
    norm_layer: Optional[Callable[..., tf_keras.layers.Layer]] = None,
    pretrained_weights: Optional[str] = None,
) -> tf_keras.Model:
    """Builds the kMaX pixel encoder registered under ``name``.

    Args:
      name: Exact backbone name, e.g. ``'kmax_resnet50'`` (see
        :data:`registry.KMAX_BACKBONES`).
      input_shape: [H, W, 3], or None for images of any size.
      drop_path_keep_prob: Keep probability of stochastic depth at the deepest
        block (1.0 disables it).
      drop_path_schedule: ``'constant'`` or ``'linear'``; None (the default)
        keeps the backbone's default, 'linear' for every backbone here, which
        is what DeepLab2's kMaX uses whatever its config says (ResNets: per
        stage; ConvNeXt: per block; see each module).
      norm_layer: BatchNormalization factory for backbones that use BN (ResNet,
        MobileNetV3), e.g. ``functools.partial(tf_keras.layers.
        BatchNormalization, momentum=0.99, epsilon=1e-3)``; None uses those
        DeepLab2 defaults. ConvNeXt uses LayerNorm and ignores it.
      pretrained_weights: Optional TF2 checkpoint prefix to partially restore
        (see :func:`weights.load_pretrained_weights`).

    Returns:
      The built encoder, a ``tf_keras.Model`` returning the endpoint dict.

    Raises:
      ValueError: For an unknown name, or a checkpoint that does not fit.
    """
    builder = _import_builder(name)
    kwargs = {}
    # None keeps the backbone's own default: DeepLab2's kMaX schedule.
    if drop_path_schedule is not None:
        kwargs["drop_path_schedule"] = drop_path_schedule
    model = builder(
        input_shape=input_shape,
        drop_path_keep_prob=drop_path_keep_prob,
        norm_layer=norm_layer,
        **kwargs,
    )
    if pretrained_weights:
        load_pretrained_weights(model, pretrained_weights)
    return model
