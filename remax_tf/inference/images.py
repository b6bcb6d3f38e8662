"""Reading the images a user points ``remax_tf.predict`` at.

Any format Pillow decodes, any size. Pixels are turned the way a viewer shows
them (the EXIF orientation tag is applied, as phones store portrait photos
sideways with a tag), then brought to 8-bit RGB: grayscale, palette, CMYK and
alpha images go through Pillow's ``convert("RGB")`` (alpha is dropped, as the
TFRecord converters of ``remax_tf.data`` do), 16- and 32-bit grayscale is
scaled to 8 bits first instead of being clipped.
"""

from __future__ import annotations

import glob
import os
from typing import List
from typing import Sequence

import numpy as np
from PIL import Image
from PIL import ImageOps

from remax_tf.errors import RemaxError

# File name endings taken when --images names a directory (case-insensitive).
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
# Largest value of each wide grayscale mode Pillow reads (16-bit PNG / TIFF
# come as "I;16*" or as "I" holding 16-bit values).
_WIDE_GRAYSCALE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
_UINT16_MAX = 65535


class ImageReadError(RemaxError, ValueError):
    """An input image that cannot be read; the message names the file."""


class NoImagesError(RemaxError, FileNotFoundError):
    """An ``--images`` pattern that matches no image file."""


def list_images(patterns: Sequence[str]) -> List[str]:
    """The files matching ``patterns`` (globs, files or directories), sorted.

    A directory stands for the images directly inside it; ``**`` in a glob
    recurses. A path given twice is listed once.

    Raises:
      NoImagesError: a pattern matches nothing (a FileNotFoundError).
    """
    found = set()
    for pattern in patterns:
        if os.path.isdir(pattern):
            matches = [
                os.path.join(pattern, name)
                for name in os.listdir(pattern)
                if name.lower().endswith(IMAGE_EXTENSIONS)
            ]
        else:
            matches = [
                p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)
            ]
        if not matches:
            raise NoImagesError(
                f"--images {pattern!r} matches no image file. Fix: quote the glob "
                "(e.g. --images 'photos/*.jpg') and check the path; a directory "
                f"stands for its files ending in {', '.join(IMAGE_EXTENSIONS)}."
            )
        found.update(os.path.normpath(p) for p in matches)
    return sorted(found)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_GRAYSCALE_MODES:
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 / (_UINT16_MAX if values.max(initial=0) > 255 else 255)
        gray = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "F":
        gray = np.clip(np.round(np.asarray(image)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        # Pillow warns unless a palette image with transparency goes via RGBA.
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_image(path: str) -> np.ndarray:
    """Reads ``path`` as an upright [H, W, 3] uint8 RGB array.

    Raises:
      ImageReadError: naming the file, when it is missing, not an image,
        truncated or too large for Pillow's decompression-bomb limit.
    """
    try:
        with Image.open(path) as image:
            image.load()  # Decode now, so that truncated files fail here.
            upright = ImageOps.exif_transpose(image)
            return np.array(_to_rgb(upright), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(
            f"cannot read image {path}: {type(e).__name__}: {e}"
        ) from e
