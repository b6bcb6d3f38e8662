"""The COCO panoptic PNG id codec (panopticapi): ``id = R + 256 G + 256^2 B``.

One definition for the converters (:mod:`remax_tf.data.conversion` reads
annotation PNGs) and evaluation (:mod:`remax_tf.evaluation.coco_panoptic`
reads and writes them); 0 is void / no segment.
"""

import numpy as np

# Colour channel base of the id encoding (COCO panoptic format).
_CHANNEL_BASE = 256


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] colours -> [H, W] uint32 ids, ``R + 256 G + 256^2 B``."""
    rgb = np.asarray(rgb).astype(np.uint32)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an [H, W, 3] RGB id image, got {rgb.shape}.")
    return (
        rgb[..., 0]
        + _CHANNEL_BASE * rgb[..., 1]
        + _CHANNEL_BASE * _CHANNEL_BASE * rgb[..., 2]
    )


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """[H, W] ids -> [H, W, 3] uint8 colours (inverse of :func:`rgb_to_id`)."""
    ids = np.asarray(ids).astype(np.int64)
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= _CHANNEL_BASE**3:
        raise ValueError("segment ids must lie in [0, 256^3) to be stored as RGB.")
    rgb = np.empty(ids.shape + (3,), np.uint8)
    for channel in range(3):
        rgb[..., channel] = ids % _CHANNEL_BASE
        ids = ids // _CHANNEL_BASE
    return rgb
