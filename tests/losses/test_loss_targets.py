"""Ground-truth preprocessing (DeepLab2's _pre_process_ground_truth + ReMaX maps)."""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.losses.targets import build_ground_truth
from remax_tf.losses.targets import strided_downsample


def test_strided_downsample_and_its_errors():
    x = tf.reshape(tf.range(25), (1, 5, 5))
    np.testing.assert_array_equal(
        strided_downsample(x, (3, 3)).numpy()[0],
        [[0, 2, 4], [10, 12, 14], [20, 22, 24]],
    )
    assert strided_downsample(x, (5, 5)) is x
    with pytest.raises(ValueError, match="k \\* output_stride \\+ 1"):
        strided_downsample(x, (2, 3))
    with pytest.raises(ValueError, match="k \\* output_stride \\+ 1"):
        strided_downsample(tf.zeros((1, 5, 9)), (3, 3))


def test_hand_made_ground_truth(layout):
    # 3x3 crop, output 3x3 (no striding). Layout: 1, 2 things; 3, 4 stuff; 0 void.
    semantic = np.array([[[1, 1, 3], [2, 3, 3], [0, 1, 4]]], np.int32)
    thing_id = np.array([[[0, 0, -1], [1, -1, -1], [-1, -1, -1]]], np.int32)
    thing_class = np.array([[1, 2, -1]], np.int32)  # max_thing_id = 3
    gt = build_ground_truth(
        {
            common.GT_SEMANTIC_KEY: semantic,
            common.GT_THING_ID_MASK_KEY: thing_id,
            common.GT_THING_ID_CLASS_KEY: thing_class,
        },
        (3, 3),
        layout,
    )
    # G = 3 thing ids + 2 stuff classes; the pixel at (2, 1) is a crowd pixel
    # of class 1 (no thing id): non-void but in no mask.
    np.testing.assert_array_equal(
        gt.pixel_non_void.numpy()[0], [1, 1, 1, 1, 1, 1, 0, 1, 1]
    )
    np.testing.assert_array_equal(
        gt.pixel_thing.numpy()[0], [1, 1, 0, 1, 0, 0, 0, 0, 0]
    )
    mask_of_pixel = [0, 0, 3, 1, 3, 3, -1, -1, 4]
    np.testing.assert_array_equal(
        gt.pixel_mask_one_hot.numpy()[0],
        np.eye(5)[mask_of_pixel] * (np.array(mask_of_pixel) >= 0)[:, None],
    )
    np.testing.assert_array_equal(gt.mask_area.numpy()[0], [2, 1, 0, 3, 1])
    np.testing.assert_array_equal(gt.mask_non_void.numpy()[0], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(
        gt.mask_class_one_hot.numpy()[0].argmax(-1) * gt.mask_non_void.numpy()[0],
        [0, 1, 0, 2, 3],
    )
    # Model-order class per pixel (things 0-1, stuff 2-3), void -1.
    np.testing.assert_array_equal(
        gt.pixel_class_index.numpy()[0], [0, 0, 2, 1, 2, 2, -1, 0, 3]
    )
    np.testing.assert_array_equal(
        gt.pixel_class_one_hot.numpy()[0].sum(-1), gt.pixel_non_void.numpy()[0]
    )
    # 9 pixels / area of the pixel's mask; pixels in no mask get 9 / 1.
    np.testing.assert_allclose(
        gt.inverse_pixel_mask_area.numpy()[0], [4.5, 4.5, 3, 9, 3, 3, 9, 9, 9]
    )
    np.testing.assert_array_equal(gt.pixel_semantic_weight.numpy(), np.ones((1, 9)))


def test_a_mask_lost_by_striding_becomes_void(layout, make_gt):
    gt = build_ground_truth(make_gt("one_pixel"), (5, 9), layout)
    np.testing.assert_array_equal(gt.mask_area.numpy()[0, :2], [1, 0])
    np.testing.assert_array_equal(gt.mask_non_void.numpy()[0, :2], [1, 0])


def test_missing_keys_are_named(layout, make_gt):
    y_true = dict(make_gt())
    del y_true[common.GT_THING_ID_MASK_KEY]
    with pytest.raises(KeyError, match=common.GT_THING_ID_MASK_KEY):
        build_ground_truth(y_true, (5, 9), layout)
