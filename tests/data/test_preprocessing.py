"""Geometric preprocessing keeps labels on their pixels (DeepLab2 semantics)."""

import numpy as np
import pytest
from scipy import ndimage
import tensorflow as tf

from remax_tf.data import preprocessing
from remax_tf.postprocess import undo_resize_and_pad

VOID = 0
PALETTE = {  # panoptic value -> colour; the colour encodes the label
    1 * 256: (200, 30, 30),
    2 * 256 + 1: (30, 200, 30),
    2 * 256 + 2: (30, 30, 200),
    3 * 256: (250, 250, 10),
    2 * 256 + 3: (10, 250, 250),
}


def _blocks(height=60, width=90, block=10, seed=0):
    rng = np.random.default_rng(seed)
    values = np.array(list(PALETTE))
    grid = rng.choice(values, size=(height // block, width // block))
    label = np.kron(grid, np.ones((block, block), np.int64)).astype(np.int32)
    image = np.zeros(label.shape + (3,), np.uint8)
    for value, colour in PALETTE.items():
        image[label == value] = colour
    return image, label


def interior(label, radius=2):
    """Pixels whose (2 radius + 1)^2 neighbourhood holds one label; pixels near
    the border are excluded (their neighbours outside the crop are unknown)."""
    size = 2 * radius + 1
    low = ndimage.minimum_filter(label, size, mode="constant", cval=-1)
    return ndimage.maximum_filter(label, size) == low


def _assert_colours_follow_labels(image, label):
    inside = interior(label)
    assert inside.mean() > 0.15
    for value, colour in PALETTE.items():
        where = inside & (label == value)
        np.testing.assert_allclose(
            image[where], np.broadcast_to(colour, image[where].shape), atol=1e-3
        )
    padding = inside & (label == VOID)
    np.testing.assert_allclose(image[padding], preprocessing.PAD_IMAGE_VALUE)


@pytest.mark.parametrize("seed", range(4))
def test_scale_pad_crop_flip_keep_labels_aligned(seed):
    image, label = _blocks(seed=seed)
    config = preprocessing.PreprocessConfig(
        crop_size=(65, 65),
        min_scale_factor=0.5,
        max_scale_factor=2.0,
        scale_factor_step_size=0.25,
    )
    out_image, out_label = preprocessing.augment_for_training(
        image, label, config, VOID, tf.constant([seed, 11])
    )
    assert out_image.shape == (65, 65, 3) and out_image.dtype == tf.float32
    assert out_label.shape == (65, 65) and out_label.dtype == tf.int32
    out_label = out_label.numpy()
    assert set(np.unique(out_label)) <= set(PALETTE) | {VOID}
    _assert_colours_follow_labels(out_image.numpy(), out_label)


def test_augmentation_is_a_function_of_the_seed():
    image, label = _blocks()
    config = preprocessing.PreprocessConfig(
        crop_size=(33, 33), min_scale_factor=0.5, max_scale_factor=1.5,
        scale_factor_step_size=0.1,
    )  # fmt: skip
    runs = [
        preprocessing.augment_for_training(image, label, config, VOID, tf.constant(s))
        for s in ([1, 2], [1, 2], [3, 4])
    ]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert not np.array_equal(runs[0][1], runs[2][1])


def test_flip_moves_image_and_label_together():
    image, label = _blocks()
    flipped = 0
    for s in range(8):
        out_image, out_label = preprocessing.random_flip(
            tf.constant(image), tf.constant(label), tf.constant([s, 0])
        )
        is_flipped = not np.array_equal(out_label, label)
        flipped += is_flipped
        expected_image = image[:, ::-1] if is_flipped else image
        expected_label = label[:, ::-1] if is_flipped else label
        np.testing.assert_array_equal(out_image, expected_image)
        np.testing.assert_array_equal(out_label, expected_label)
    assert 0 < flipped < 8


def test_resized_shape_matches_deeplab2_for_coco_images():
    # Values of DeepLab2 resize_to_range_helper at min = max = 641: the longer
    # side becomes 641 (640x480 is first scaled up to 854x641, then down by
    # 641/854, so its short side floors to 481).
    for (h, w), expected in {(427, 640): (428, 641), (360, 640): (360, 641),
                             (640, 480): (641, 481)}.items():  # fmt: skip
        shape = preprocessing.resized_shape(h, w, (641, 641), (641, 641))
        assert tuple(shape.numpy()) == expected
    # resize_factor 32: sides become 32k + 1, max lowered to 641.
    shape = preprocessing.resized_shape(427, 640, (641, 641), (650, 650), factor=32)
    assert tuple(shape.numpy()) == (449, 641)


def test_scale_choices_follow_the_proto_floats():
    # DeepLab2's COCO recipe: 0.3..1.7 step 0.1 read as float32 -> 15 scales.
    as_float32 = [float(np.float32(v)) for v in (0.3, 1.7, 0.1)]
    assert preprocessing.scale_count(*as_float32) == 15
    choices = preprocessing.scale_choices(*as_float32).numpy()
    np.testing.assert_allclose(choices[:3], [0.3, 0.4, 0.5], atol=1e-6)
    assert preprocessing.scale_count(1.0, 1.0, 0.1) == 0
    with pytest.raises(ValueError, match="min_scale_factor 2.0 must lie"):
        preprocessing.scale_count(2.0, 1.0, 0.1)


def test_eval_pads_bottom_right_and_undo_restores_the_label():
    image, label = _blocks(height=60, width=90)
    config = preprocessing.PreprocessConfig(crop_size=(129, 129))
    # max_resize defaults to the crop size: no resize needed, only padding.
    padded_image, padded_label, resized = preprocessing.preprocess_for_eval(
        image, label, config, VOID
    )
    assert resized.shape == (60, 90, 3)
    assert padded_image.shape == (129, 129, 3)
    np.testing.assert_array_equal(padded_label[:60, :90], label)
    assert np.all(padded_label.numpy()[60:] == VOID)
    assert np.all(padded_image.numpy()[:, 90:] == preprocessing.PAD_IMAGE_VALUE)
    restored = undo_resize_and_pad(padded_label[None], [60, 90], [60, 90])[0]
    np.testing.assert_array_equal(restored, label)


def test_eval_resize_then_undo_returns_to_the_raw_size():
    image, label = _blocks(height=100, width=150)
    config = preprocessing.PreprocessConfig(
        crop_size=(65, 65), min_resize_value=(65, 65), max_resize_value=(65, 65)
    )
    padded_image, padded_label, resized = preprocessing.preprocess_for_eval(
        image, label, config, VOID
    )
    assert resized.shape == (43, 65, 3)
    _assert_colours_follow_labels(padded_image.numpy(), padded_label.numpy())
    restored = undo_resize_and_pad(padded_label[None], [43, 65], [100, 150])[0]
    assert restored.shape == (100, 150) and restored.dtype == tf.int32
    assert np.mean(restored.numpy() == label) > 0.9


def test_max_resize_above_crop_is_refused():
    config = preprocessing.PreprocessConfig(
        crop_size=(65, 65), max_resize_value=(129, 129)
    )
    with pytest.raises(
        ValueError, match=r"max_resize_value \[129, 129\] exceeds crop_size"
    ):
        preprocessing.preprocess_for_eval(np.zeros((10, 10, 3)), None, config, VOID)
