"""Geometric preprocessing of an image and its panoptic label.

Semantics of DeepLab2 ``data/preprocessing/input_preprocessing.py`` and
``preprocess_utils.py``:

* training: resize to range (only when min/max resize values are set) ->
  random scale (a value from ``linspace(min, max, steps)``) -> AutoAugment ->
  pad to at least the crop size at a random offset (image 127.5, label
  ``label_pad_value``) -> random crop -> left-right flip with probability 0.5;
* evaluation: resize to range (max defaults to the crop size) -> pad
  bottom-right to the crop size; :func:`remax_tf.postprocess.undo_resize_and_pad` maps a
  prediction back to the original image size.

Resizing uses ``align_corners=True`` (bilinear for images, nearest for labels)
like DeepLab2. Randomness is stateless: every random function takes a ``seed``
([2] int tensor), so a sample is a pure function of its record and seed and the
pipeline is reproducible whatever its parallelism. Labels are [H, W] int32.
"""

from __future__ import annotations

import dataclasses
from typing import Optional
from typing import Sequence
from typing import Tuple

import tensorflow as tf

from remax_tf.data import autoaugment

# DeepLab2 input_preprocessing.py: _MEAN_PIXEL, the value padded images get.
PAD_IMAGE_VALUE = 127.5
# DeepLab2 input_preprocessing.py: _PROB_OF_FLIP.
FLIP_PROBABILITY = 0.5


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Plain preprocessing parameters (``DatasetOptions`` fields).

    Attributes:
      crop_size: (height, width) of the network input.
      min_resize_value: (height, width) or None, see :func:`resized_shape`.
      max_resize_value: (height, width) or None.
      resize_factor: Resized sides become ``factor * k + 1``; None for none.
      min_scale_factor, max_scale_factor, scale_factor_step_size: Random
        scale range and step (step 0: uniform in [min, max)).
      autoaugment_policy: AutoAugment policy name or "" for none.
    """

    crop_size: Tuple[int, int]
    min_resize_value: Optional[Tuple[int, int]] = None
    max_resize_value: Optional[Tuple[int, int]] = None
    resize_factor: Optional[int] = None
    min_scale_factor: float = 1.0
    max_scale_factor: float = 1.0
    scale_factor_step_size: float = 0.0
    autoaugment_policy: str = ""

    def scaled(self, factor: float) -> "PreprocessConfig":
        """The same config with the scale range multiplied by ``factor``."""
        return dataclasses.replace(
            self,
            min_scale_factor=self.min_scale_factor * factor,
            max_scale_factor=self.max_scale_factor * factor,
        )


def resize_value(values: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """DeepLab2's resize spec: [] / 0 -> None, [v] -> (v, v), [h, w] -> (h, w)."""
    if not values:
        return None
    values = tuple(int(v) for v in values)
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2:
        raise ValueError(
            f"a resize value takes one or two numbers (height, width), got {values}."
        )
    if values[0] <= 0 or values[1] <= 0:
        return None
    return values


def split_seed(seed: tf.Tensor, count: int) -> tf.Tensor:
    """``count`` independent [2] seeds derived from ``seed``; shape [count, 2]."""
    return tf.random.experimental.stateless_split(seed, num=count)


def _uniform_int(seed: tf.Tensor, maxval) -> tf.Tensor:
    """Uniform integer in [0, maxval)."""
    return tf.random.stateless_uniform(
        [], seed=seed, minval=0, maxval=maxval, dtype=tf.int32
    )


def _scale_dim(size, factor) -> tf.Tensor:
    return tf.cast(
        tf.floor(tf.cast(size, tf.float32) * tf.cast(factor, tf.float32)), tf.int32
    )


def resized_shape(
    height: tf.Tensor,
    width: tf.Tensor,
    min_size: Optional[Tuple[int, int]],
    max_size: Optional[Tuple[int, int]],
    factor: Optional[int] = None,
) -> tf.Tensor:
    """[2] int32 output size (DeepLab2 ``resize_to_range_helper``).

    Scales so that both sides reach ``min_size``, then shrinks so that none
    exceeds ``max_size`` (aspect ratio kept); with ``factor`` the sides become
    ``factor * k + 1`` (and ``max_size`` is first lowered to such a value).
    """
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    if min_size:
        # float64 ratios then float32 products, as DeepLab2 computes them.
        scale = tf.maximum(
            min_size[0] / tf.cast(height, tf.float64),
            min_size[1] / tf.cast(width, tf.float64),
        )
        height, width = _scale_dim(height, scale), _scale_dim(width, scale)
    if max_size:
        if factor:
            max_size = (
                max_size[0] - (max_size[0] - 1) % factor,
                max_size[1] - (max_size[1] - 1) % factor,
            )
        scale = tf.minimum(
            max_size[0] / tf.cast(height, tf.float64),
            max_size[1] / tf.cast(width, tf.float64),
        )
        scale = tf.minimum(tf.cast(scale, tf.float32), 1.0)
        height, width = _scale_dim(height, scale), _scale_dim(width, scale)
    shape = tf.stack([height, width])
    if factor:
        shape += (factor - (shape - 1) % factor) % factor
    return shape


def resize_image_and_label(
    image: tf.Tensor, label: Optional[tf.Tensor], size: tf.Tensor
) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """Bilinear image / nearest label resize with aligned corners."""
    image = tf.compat.v1.image.resize(
        image, size, method=tf.image.ResizeMethod.BILINEAR, align_corners=True
    )
    if label is not None:
        label = tf.compat.v1.image.resize(
            label[..., tf.newaxis],
            size,
            method=tf.image.ResizeMethod.NEAREST_NEIGHBOR,
            align_corners=True,
        )[..., 0]
    return image, label


def resize_to_range(
    image: tf.Tensor,
    label: Optional[tf.Tensor],
    min_size: Optional[Tuple[int, int]],
    max_size: Optional[Tuple[int, int]],
    factor: Optional[int] = None,
) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    shape = tf.shape(image)
    size = resized_shape(shape[0], shape[1], min_size, max_size, factor)
    return resize_image_and_label(image, label, size)


def scale_count(min_scale: float, max_scale: float, step: float) -> int:
    """How many discrete scales DeepLab2 ``get_random_scale`` draws from.

    0 when the scale is fixed (min == max) or drawn uniformly from
    [min, max) (step 0).
    """
    if min_scale < 0 or min_scale > max_scale:
        raise ValueError(
            f"augmentations: min_scale_factor {min_scale} must lie in "
            f"[0, max_scale_factor {max_scale}]."
        )
    if min_scale == max_scale or step == 0:
        return 0
    return int((max_scale - min_scale) / step + 1)


def scale_choices(min_scale: float, max_scale: float, step: float) -> tf.Tensor:
    """The discrete scales, ``linspace(min, max, scale_count)`` (float32)."""
    count = scale_count(min_scale, max_scale, step)
    if not count:
        raise ValueError("the scale is fixed or continuous; no discrete choices.")
    return tf.linspace(min_scale, max_scale, count)


def random_scale(
    seed: tf.Tensor, min_scale: float, max_scale: float, step: float
) -> tf.Tensor:
    """A random scale factor (scalar float32)."""
    count = scale_count(min_scale, max_scale, step)
    if min_scale == max_scale:
        return tf.constant(min_scale, tf.float32)
    if not count:
        return tf.random.stateless_uniform(
            [], seed=seed, minval=min_scale, maxval=max_scale
        )
    choices = scale_choices(min_scale, max_scale, step)
    return tf.gather(choices, _uniform_int(seed, count))


def scale_image_and_label(
    image: tf.Tensor, label: Optional[tf.Tensor], scale: tf.Tensor
) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """Resizes by ``scale``: new side = floor(side * scale)."""
    shape = tf.shape(image)
    size = tf.cast(tf.cast(shape[:2], tf.float32) * scale, tf.int32)
    return resize_image_and_label(image, label, size)


def pad_image_and_label(
    image: tf.Tensor,
    label: Optional[tf.Tensor],
    offset_height,
    offset_width,
    target_height,
    target_width,
    label_pad_value: int,
) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """Pads to the target size, the content placed at the given offset."""
    shape = tf.shape(image)
    bottom = target_height - offset_height - shape[0]
    right = target_width - offset_width - shape[1]
    checks = [
        tf.debugging.assert_non_negative(
            bottom, message="padding: target height smaller than the image"
        ),
        tf.debugging.assert_non_negative(
            right, message="padding: target width smaller than the image"
        ),
    ]
    with tf.control_dependencies(checks):
        paddings = tf.stack(
            [tf.stack([offset_height, bottom]), tf.stack([offset_width, right])]
        )
    image = tf.pad(
        image, tf.concat([paddings, [[0, 0]]], 0), constant_values=PAD_IMAGE_VALUE
    )
    if label is not None:
        label = tf.pad(label, paddings, constant_values=label_pad_value)
    return image, label


def random_crop(
    image: tf.Tensor, label: tf.Tensor, crop_size: Tuple[int, int], seed: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor]:
    """The same random crop of image and label (both at least crop-sized)."""
    shape = tf.shape(image)
    seeds = split_seed(seed, 2)
    top = _uniform_int(seeds[0], shape[0] - crop_size[0] + 1)
    left = _uniform_int(seeds[1], shape[1] - crop_size[1] + 1)
    image = tf.slice(image, [top, left, 0], [crop_size[0], crop_size[1], 3])
    label = tf.slice(label, [top, left], list(crop_size))
    return image, label


def random_flip(
    image: tf.Tensor, label: tf.Tensor, seed: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Left-right flip of both with probability FLIP_PROBABILITY."""
    flip = tf.random.stateless_uniform([], seed=seed) <= FLIP_PROBABILITY
    return tf.cond(
        flip,
        lambda: (tf.reverse(image, [1]), tf.reverse(label, [1])),
        lambda: (image, label),
    )


def augment_for_training(
    image: tf.Tensor,
    label: tf.Tensor,
    config: PreprocessConfig,
    label_pad_value: int,
    seed: tf.Tensor,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """The training transform of one sample.

    Args:
      image: [H, W, 3] uint8 or float.
      label: [H, W] int32 panoptic label.
      config: Preprocessing parameters.
      label_pad_value: Label of padded pixels (DeepLab2: ignore * divisor).
      seed: [2] int seed.

    Returns:
      [crop_h, crop_w, 3] float32 image in [0, 255] and [crop_h, crop_w]
      int32 label.
    """
    seeds = split_seed(seed, 6)
    image = tf.cast(image, tf.float32)
    label = tf.cast(label, tf.int32)
    if config.min_resize_value or config.max_resize_value:
        max_size = _checked_max_resize(config)
        image, label = resize_to_range(
            image, label, config.min_resize_value, max_size, config.resize_factor
        )
    if not config.min_scale_factor == config.max_scale_factor == 1.0:
        scale = random_scale(
            seeds[0],
            config.min_scale_factor,
            config.max_scale_factor,
            config.scale_factor_step_size,
        )
        image, label = scale_image_and_label(image, label, scale)
    if config.autoaugment_policy:
        # DeepLab2 runs AutoAugment on uint8 pixels (a truncating cast).
        image = tf.cast(
            autoaugment.distort_image(
                tf.cast(image, tf.uint8), config.autoaugment_policy, seeds[1]
            ),
            tf.float32,
        )
    crop_height, crop_width = config.crop_size
    shape = tf.shape(image)
    target_height = tf.maximum(shape[0], crop_height)
    target_width = tf.maximum(shape[1], crop_width)
    offset_height = _uniform_int(seeds[2], tf.maximum(crop_height - shape[0], 1))
    offset_width = _uniform_int(seeds[3], tf.maximum(crop_width - shape[1], 1))
    image, label = pad_image_and_label(
        image,
        label,
        offset_height,
        offset_width,
        target_height,
        target_width,
        label_pad_value,
    )
    image, label = random_crop(image, label, config.crop_size, seeds[4])
    image, label = random_flip(image, label, seeds[5])
    image.set_shape([crop_height, crop_width, 3])
    label.set_shape([crop_height, crop_width])
    return image, label


def _checked_max_resize(
    config: PreprocessConfig, is_inference: bool = False
) -> Optional[Tuple[int, int]]:
    """DeepLab2 ``_update_max_resize_value``: defaults to the crop size at
    inference and must not exceed it."""
    max_size = config.max_resize_value
    if max_size is None and is_inference:
        max_size = tuple(config.crop_size)
    if max_size is None:
        return None
    if max_size[0] > config.crop_size[0] or max_size[1] > config.crop_size[1]:
        raise ValueError(
            f"max_resize_value {list(max_size)} exceeds crop_size "
            f"{list(config.crop_size)}; lower max_resize_value or raise crop_size."
        )
    return max_size


def preprocess_for_eval(
    image: tf.Tensor,
    label: Optional[tf.Tensor],
    config: PreprocessConfig,
    label_pad_value: int,
) -> Tuple[tf.Tensor, Optional[tf.Tensor], tf.Tensor]:
    """Resize to range and pad bottom-right to the crop size.

    Returns:
      (padded image [crop_h, crop_w, 3] float32, padded label or None,
      resized image before padding [h, w, 3] float32).
    """
    crop_height, crop_width = config.crop_size
    image = tf.cast(image, tf.float32)
    if label is not None:
        label = tf.cast(label, tf.int32)
    image, label = resize_to_range(
        image,
        label,
        config.min_resize_value,
        _checked_max_resize(config, is_inference=True),
        config.resize_factor,
    )
    resized = image
    image, label = pad_image_and_label(
        image, label, 0, 0, crop_height, crop_width, label_pad_value
    )
    image.set_shape([crop_height, crop_width, 3])
    if label is not None:
        label.set_shape([crop_height, crop_width])
    return image, label, resized
