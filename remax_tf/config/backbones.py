"""The kMaX pixel encoder (backbone) names a config may use.

DeepLab2's ``backbone.name`` with the ``kmax_`` prefix (exact match, no
substring dispatch). The config validator rejects other names;
:mod:`remax_tf.model.pixel_encoder.registry` maps each of them to its
builder (a test keeps the two lists equal).
"""

from typing import Tuple

KMAX_BACKBONE_NAMES: Tuple[str, ...] = (
    "kmax_resnet50",
    "kmax_axial_resnet50",
    "kmax_convnext_tiny",
    "kmax_convnext_small",
    "kmax_convnext_base",
    "kmax_convnext_large",
    "kmax_mobilenet_v3_small",
    "kmax_mobilenet_v3_large",
)


def known_backbones() -> Tuple[str, ...]:
    """The names, sorted (for messages)."""
    return tuple(sorted(KMAX_BACKBONE_NAMES))
