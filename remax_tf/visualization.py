"""Pictures people can read: a colour per segment, outlines, class names.

Used by TensorBoard image summaries, the demo and ``remax_tf.predict``. Inputs
are numpy arrays in DeepLab2's panoptic encoding
(``semantic * label_divisor + instance``).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PIL import ImageDraw

from remax_tf.data.datasets import DatasetDescriptor

# Instances of one class get shades of the class colour: each instance id moves
# the colour by a fixed pseudo-random offset of at most this much per channel.
_INSTANCE_JITTER = 60
_VOID_COLOUR = (0, 0, 0)


def segment_colours(panoptic: np.ndarray, descriptor: DatasetDescriptor) -> np.ndarray:
    """[H, W, 3] uint8: the class colour, shaded per instance; void black."""
    divisor = descriptor.panoptic_label_divisor
    semantic = panoptic // divisor
    instance = panoptic % divisor
    palette = np.zeros(
        (max(descriptor.num_classes, int(semantic.max()) + 1), 3), np.int32
    )
    for i, colour in enumerate(descriptor.class_colors):
        palette[i] = colour
    colours = palette[np.clip(semantic, 0, len(palette) - 1)]
    # A deterministic offset per instance id (golden-ratio hashing).
    offset = (
        (instance[..., None] * np.array([97, 57, 31])) % (2 * _INSTANCE_JITTER + 1)
    ) - _INSTANCE_JITTER
    colours = np.where(instance[..., None] > 0, colours + offset, colours)
    void = (semantic == descriptor.ignore_label) | (panoptic < 0)
    colours[void] = _VOID_COLOUR
    return np.clip(colours, 0, 255).astype(np.uint8)


def segment_boundaries(panoptic: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels whose right or lower neighbour is another segment."""
    edge = np.zeros(panoptic.shape, bool)
    edge[:, :-1] |= panoptic[:, :-1] != panoptic[:, 1:]
    edge[:-1, :] |= panoptic[:-1, :] != panoptic[1:, :]
    return edge


def overlay(
    image: np.ndarray,
    panoptic: np.ndarray,
    descriptor: DatasetDescriptor,
    alpha: float = 0.55,
    outline: bool = True,
    class_names: bool = True,
    min_width: int = 0,
) -> np.ndarray:
    """The image with the segments blended in, outlined and named.

    Small images are first enlarged (nearest neighbour, integer factor) to at
    least ``min_width`` pixels so that outlines and names stay legible.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    factor = -(-min_width // image.shape[1]) if min_width > image.shape[1] else 1
    if factor > 1:
        image = image.repeat(factor, axis=0).repeat(factor, axis=1)
        panoptic = panoptic.repeat(factor, axis=0).repeat(factor, axis=1)
    image = image[..., :3].astype(np.float32)
    colours = segment_colours(panoptic, descriptor).astype(np.float32)
    blended = (1 - alpha) * image + alpha * colours
    if outline:
        blended[segment_boundaries(panoptic)] = 255.0
    result = np.clip(blended, 0, 255).astype(np.uint8)
    if class_names:
        result = _draw_names(result, panoptic, descriptor)
    return result


def _draw_names(
    image: np.ndarray, panoptic: np.ndarray, descriptor: DatasetDescriptor
) -> np.ndarray:
    """Writes each segment's class name at its centre of mass."""
    min_area = max(16, panoptic.size // 400)  # Skip labels that would not fit.
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    divisor = descriptor.panoptic_label_divisor
    for segment in np.unique(panoptic):
        semantic = int(segment) // divisor
        if (
            segment < 0
            or semantic == descriptor.ignore_label
            or semantic >= len(descriptor.class_names)
        ):
            continue
        ys, xs = np.nonzero(panoptic == segment)
        if ys.size < min_area:
            continue
        draw.text(
            (int(xs.mean()), int(ys.mean())),
            descriptor.class_names[semantic],
            fill=(255, 255, 255),
            stroke_width=1,
            stroke_fill=(0, 0, 0),
            anchor="mm",
        )
    return np.asarray(picture)


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """Concatenates images horizontally with a white gap."""
    height = max(i.shape[0] for i in images)
    parts = []
    for i, picture in enumerate(images):
        padded = np.full((height, picture.shape[1], 3), 255, np.uint8)
        padded[: picture.shape[0]] = picture[..., :3]
        parts.append(padded)
        if i + 1 < len(images):
            parts.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def save_png(path: str, picture: np.ndarray) -> None:
    """Writes ``picture`` as PNG, atomically (temporary file, then rename)."""
    tmp = f"{path}.tmp.png"
    Image.fromarray(picture).save(tmp)
    os.replace(tmp, path)
