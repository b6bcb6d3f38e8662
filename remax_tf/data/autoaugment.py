"""AutoAugment, DeepLab2's only photometric jitter.

DeepLab2 (``data/preprocessing/autoaugment_policy.py`` / ``autoaugment_utils.py``)
ships one learned policy, "simple_classification_policy": five sub-policies
of two operations each over a reduced space of nine PIL-like operations
(Cubuk et al., AutoAugment, CVPR 2019 / RandAugment, CVPR 2020), and a
variant with every magnitude scaled by 0.2 (its Cityscapes recipe). One
sub-policy is drawn per image; each of its operations applies with its own
probability. All operations are photometric, so labels are untouched.

Images are [H, W, 3] uint8; randomness is stateless (``seed`` [2]).
"""

from __future__ import annotations

from typing import Callable
from typing import Dict
from typing import Tuple

import tensorflow as tf

# Largest magnitude level of the policy encoding (DeepLab2: _MAX_LEVEL).
MAX_LEVEL = 10.0
# DeepLab2 autoaugment_policy.py: augmentation_reduced_operations.
REDUCED_OPERATIONS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Posterize",
    "Solarize",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
)
# DeepLab2 autoaugment_policy.py: augmentation_probabilities.
APPLY_PROBABILITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# DeepLab2 autoaugment_policy.py: simple_classification_policy, as
# (operation index, probability index, magnitude) triplets, two per sub-policy.
SIMPLE_CLASSIFICATION_POLICY = (
    (8, 2, 7), (7, 1, 10),
    (1, 0, 9), (6, 1, 10),
    (8, 1, 9), (5, 1, 9),
    (4, 1, 7), (1, 3, 9),
    (8, 1, 1), (1, 1, 7),
)  # fmt: skip
# Sharpness smoothing kernel (PIL ImageFilter.SMOOTH), normalised by its sum.
_SMOOTH_KERNEL = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))
_SMOOTH_KERNEL_SUM = 13.0

Operation = Tuple[str, float, float]  # (name, probability, magnitude level)


def decode_policy(
    triplets, magnitude_scale: float = 1.0
) -> Tuple[Tuple[Operation, ...], ...]:
    """Policy triplets -> sub-policies of (name, probability, level)."""
    if len(triplets) % 2:
        raise ValueError("a policy holds two operations per sub-policy.")
    operations = [
        (
            REDUCED_OPERATIONS[op],
            APPLY_PROBABILITIES[prob],
            magnitude * magnitude_scale,
        )
        for op, prob, magnitude in triplets
    ]
    return tuple(tuple(operations[i : i + 2]) for i in range(0, len(operations), 2))


POLICIES: Dict[str, Tuple[Tuple[Operation, ...], ...]] = {
    "simple_classification_policy": decode_policy(SIMPLE_CLASSIFICATION_POLICY),
    "simple_classification_policy_magnitude_scale_0.2": decode_policy(
        SIMPLE_CLASSIFICATION_POLICY, magnitude_scale=0.2
    ),
}


def get_policy(name: str) -> Tuple[Tuple[Operation, ...], ...]:
    if name not in POLICIES:
        raise KeyError(
            f"unknown autoaugment_policy_name {name!r}; known: {sorted(POLICIES)} "
            "(or leave it empty for no AutoAugment)."
        )
    return POLICIES[name]


# ---------------------------------------------------------------------------
# Operations (PIL semantics, uint8 in and out).


def blend(image1: tf.Tensor, image2: tf.Tensor, factor: float) -> tf.Tensor:
    """image1 + factor * (image2 - image1); clipped only when extrapolating."""
    if factor == 0.0:
        return tf.convert_to_tensor(image1)
    if factor == 1.0:
        return tf.convert_to_tensor(image2)
    image1 = tf.cast(image1, tf.float32)
    image2 = tf.cast(image2, tf.float32)
    mixed = image1 + factor * (image2 - image1)
    if 0.0 < factor < 1.0:
        return tf.cast(mixed, tf.uint8)
    return tf.cast(tf.clip_by_value(mixed, 0.0, 255.0), tf.uint8)


def autocontrast(image: tf.Tensor) -> tf.Tensor:
    """Stretches each channel to span 0..255."""

    def channel(values: tf.Tensor) -> tf.Tensor:
        low = tf.cast(tf.reduce_min(values), tf.float32)
        high = tf.cast(tf.reduce_max(values), tf.float32)

        def stretch():
            scale = 255.0 / (high - low)
            out = tf.cast(values, tf.float32) * scale - low * scale
            return tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.uint8)

        return tf.cond(high > low, stretch, lambda: values)

    return tf.stack([channel(image[..., c]) for c in range(3)], axis=-1)


def equalize(image: tf.Tensor) -> tf.Tensor:
    """Histogram equalisation per channel (PIL ImageOps.equalize)."""

    def channel(values: tf.Tensor) -> tf.Tensor:
        values = tf.cast(values, tf.int32)
        histogram = tf.histogram_fixed_width(values, [0, 255], nbins=256)
        nonzero = tf.boolean_mask(histogram, histogram > 0)
        step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255

        def remap():
            lut = (tf.cumsum(histogram) + step // 2) // step
            lut = tf.clip_by_value(tf.concat([[0], lut[:-1]], 0), 0, 255)
            return tf.gather(lut, values)

        return tf.cast(tf.cond(tf.equal(step, 0), lambda: values, remap), tf.uint8)

    return tf.stack([channel(image[..., c]) for c in range(3)], axis=-1)


def invert(image: tf.Tensor) -> tf.Tensor:
    return 255 - image


def posterize(image: tf.Tensor, bits: int) -> tf.Tensor:
    """Keeps the ``bits`` most significant bits."""
    shift = 8 - bits
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image: tf.Tensor, threshold: int) -> tf.Tensor:
    """Inverts the pixels at or above ``threshold``."""
    return tf.where(image < threshold, image, 255 - image)


def color(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Saturation: blend from the grey image."""
    grey = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    return blend(grey, image, factor)


def contrast(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Contrast: blend from a flat image.

    DeepLab2 (like the TPU AutoAugment it derives from) fills the flat image
    with sum(histogram) / 256, i.e. the pixel count / 256 clipped to 255, not
    the mean grey level PIL uses; kept so that DeepLab2 recipes train the same.
    """
    grey = tf.cast(tf.image.rgb_to_grayscale(image), tf.int32)
    histogram = tf.histogram_fixed_width(grey, [0, 255], nbins=256)
    level = tf.reduce_sum(tf.cast(histogram, tf.float32)) / 256.0
    flat = tf.clip_by_value(tf.ones_like(grey, tf.float32) * level, 0.0, 255.0)
    flat = tf.image.grayscale_to_rgb(tf.cast(flat, tf.uint8))
    return blend(flat, image, factor)


def brightness(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Brightness: blend from black."""
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image: tf.Tensor, factor: float) -> tf.Tensor:
    """Sharpness: blend from a smoothed copy (borders kept unsmoothed)."""
    kernel = tf.constant(_SMOOTH_KERNEL, tf.float32) / _SMOOTH_KERNEL_SUM
    kernel = tf.tile(kernel[:, :, tf.newaxis, tf.newaxis], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(
        tf.cast(image, tf.float32)[tf.newaxis], kernel, [1, 1, 1, 1], "VALID"
    )[0]
    smooth = tf.cast(tf.clip_by_value(smooth, 0.0, 255.0), tf.uint8)
    inside = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
    smooth = tf.where(inside, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), image)
    return blend(smooth, image, factor)


def _enhance_factor(level: float) -> float:
    # DeepLab2 autoaugment_utils._enhance_level_to_arg.
    return (level / MAX_LEVEL) * 1.8 + 0.1


# name -> function(image, level) with DeepLab2's level_to_arg mapping.
OPERATIONS: Dict[str, Callable[[tf.Tensor, float], tf.Tensor]] = {
    "AutoContrast": lambda image, level: autocontrast(image),
    "Equalize": lambda image, level: equalize(image),
    "Invert": lambda image, level: invert(image),
    "Posterize": lambda image, level: posterize(image, int((level / MAX_LEVEL) * 4)),
    "Solarize": lambda image, level: solarize(image, int((level / MAX_LEVEL) * 256)),
    "Color": lambda image, level: color(image, _enhance_factor(level)),
    "Contrast": lambda image, level: contrast(image, _enhance_factor(level)),
    "Brightness": lambda image, level: brightness(image, _enhance_factor(level)),
    "Sharpness": lambda image, level: sharpness(image, _enhance_factor(level)),
}


def apply_operation(image: tf.Tensor, name: str, level: float) -> tf.Tensor:
    if name not in OPERATIONS:
        raise KeyError(
            f"unknown AutoAugment operation {name!r}; known: {sorted(OPERATIONS)}"
        )
    return OPERATIONS[name](image, level)


def distort_image(image: tf.Tensor, policy_name: str, seed: tf.Tensor) -> tf.Tensor:
    """Applies one random sub-policy of ``policy_name`` to a uint8 image."""
    policy = get_policy(policy_name)
    seeds = tf.random.experimental.stateless_split(
        seed, num=1 + sum(len(sub) for sub in policy)
    )
    chosen = tf.random.stateless_uniform(
        [], seed=seeds[0], maxval=len(policy), dtype=tf.int32
    )
    branches = []
    offset = 1
    for sub_policy in policy:

        def branch(sub_policy=sub_policy, offset=offset):
            out = image
            for k, (name, probability, level) in enumerate(sub_policy):
                if probability <= 0.0:
                    continue  # Never applied (DeepLab2: floor(u + 0) == 0).
                apply = (
                    tf.random.stateless_uniform([], seed=seeds[offset + k])
                    < probability
                )
                out = tf.cond(
                    apply,
                    lambda out=out, name=name, level=level: apply_operation(
                        out, name, level
                    ),
                    lambda out=out: out,
                )
            return out

        branches.append(branch)
        offset += len(sub_policy)
    out = tf.switch_case(chosen, branches)
    out.set_shape(image.shape)
    return out
