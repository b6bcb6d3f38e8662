"""The builder of each kMaX pixel encoder (backbone) name.

The names are the config's (:data:`remax_tf.config.backbones.KMAX_BACKBONE_NAMES`,
which the config validator reads); :func:`remax_tf.model.pixel_encoder.
build_pixel_encoder` imports only the builder it needs.
"""

from typing import Dict

from remax_tf.config.backbones import known_backbones

# backbone name -> "module:function" of its builder, imported lazily.
KMAX_BACKBONES: Dict[str, str] = {
    "kmax_resnet50": "remax_tf.model.pixel_encoder.resnet:build_resnet50",
    "kmax_axial_resnet50": "remax_tf.model.pixel_encoder.axial_resnet:build_axial_resnet50",
    "kmax_convnext_tiny": "remax_tf.model.pixel_encoder.convnext:build_tiny",
    "kmax_convnext_small": "remax_tf.model.pixel_encoder.convnext:build_small",
    "kmax_convnext_base": "remax_tf.model.pixel_encoder.convnext:build_base",
    "kmax_convnext_large": "remax_tf.model.pixel_encoder.convnext:build_large",
    "kmax_mobilenet_v3_small": "remax_tf.model.pixel_encoder.mobilenet_v3:build_small",
    "kmax_mobilenet_v3_large": "remax_tf.model.pixel_encoder.mobilenet_v3:build_large",
}

__all__ = ["KMAX_BACKBONES", "known_backbones"]
