"""Names of the kMaX pixel encoders (backbones), without importing TensorFlow.

The config validator reads :data:`KMAX_BACKBONES` to reject unknown names
early; :func:`remax_tf.model.pixel_encoder.build_pixel_encoder` imports the
builder named here. Names are DeepLab2's ``backbone.name`` with the ``kmax_``
prefix (exact match, no substring dispatch).
"""

from typing import Dict

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


def known_backbones():
    return tuple(sorted(KMAX_BACKBONES))
