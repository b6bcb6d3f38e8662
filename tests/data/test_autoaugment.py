"""AutoAugment: DeepLab2's policy table and PIL-like operations."""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.data import autoaugment


def test_simple_classification_policy_table():
    policy = autoaugment.get_policy("simple_classification_policy")
    assert policy == (
        (("Sharpness", 0.4, 7), ("Brightness", 0.2, 10)),
        (("Equalize", 0.0, 9), ("Contrast", 0.2, 10)),
        (("Sharpness", 0.2, 9), ("Color", 0.2, 9)),
        (("Solarize", 0.2, 7), ("Equalize", 0.6, 9)),
        (("Sharpness", 0.2, 1), ("Equalize", 0.2, 7)),
    )
    scaled = autoaugment.get_policy("simple_classification_policy_magnitude_scale_0.2")
    assert [op[2] for sub in scaled for op in sub] == pytest.approx(
        [0.2 * op[2] for sub in policy for op in sub]
    )


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: .*simple_classification_policy"):
        autoaugment.get_policy("rand_augment")


def test_operations_follow_pil_semantics():
    image = tf.constant([[[0, 100, 200], [50, 128, 255]]], tf.uint8)
    # Solarize at level 7: threshold int(0.7 * 256) = 179.
    np.testing.assert_array_equal(
        autoaugment.apply_operation(image, "Solarize", 7),
        [[[0, 100, 55], [50, 128, 0]]],
    )
    # Brightness at level 10: factor 1.9, clipped.
    np.testing.assert_array_equal(
        autoaugment.apply_operation(image, "Brightness", 10),
        [[[0, 190, 255], [95, 243, 255]]],
    )
    # Posterize at level 7 keeps int(2.8) = 2 bits.
    np.testing.assert_array_equal(
        autoaugment.apply_operation(image, "Posterize", 7),
        [[[0, 64, 192], [0, 128, 192]]],
    )
    # A flat image has nothing to equalize or sharpen.
    flat = tf.fill([5, 5, 3], tf.constant(90, tf.uint8))
    for name in ("Equalize", "Sharpness", "AutoContrast"):
        np.testing.assert_array_equal(autoaugment.apply_operation(flat, name, 9), flat)


def test_sharpness_keeps_the_border_and_sharpens_inside():
    image = np.full((5, 5, 3), 100, np.uint8)
    image[2, 2] = 160
    out = autoaugment.sharpness(tf.constant(image), 1.9).numpy().astype(int)
    # The smoothed centre is 100 + 60 * 5/13 = 123 (truncated), so
    # 123 + 1.9 * (160 - 123) = 193.3 -> 193; borders are blended with
    # themselves and stay.
    assert out[2, 2, 0] == 193
    assert np.all(out[0] == 100) and np.all(out[:, 0] == 100)


def test_distortion_is_deterministic_per_seed():
    image = tf.constant(
        np.random.default_rng(0).integers(0, 256, (17, 23, 3)), tf.uint8
    )
    name = "simple_classification_policy"
    outs = [
        autoaugment.distort_image(image, name, tf.constant([s, 0])) for s in range(12)
    ]
    again = autoaugment.distort_image(image, name, tf.constant([0, 0]))
    np.testing.assert_array_equal(outs[0], again)
    assert all(o.shape == image.shape and o.dtype == tf.uint8 for o in outs)
    changed = sum(not np.array_equal(o, image) for o in outs)
    # Each sub-policy applies something with probability 0.2 to 0.68.
    assert 0 < changed < 12
