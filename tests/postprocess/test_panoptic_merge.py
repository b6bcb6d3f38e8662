"""Pixel counting without bincount, and the merge into panoptic maps."""

import numpy as np
import tensorflow as tf

from remax_tf.postprocess.panoptic_merge import SlotAssignment
from remax_tf.postprocess.panoptic_merge import count_pixels_per_id
from remax_tf.postprocess.panoptic_merge import merge_to_panoptic


def test_count_pixels_per_id_matches_numpy():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=(3, 5, 7)).astype(np.int32)
    counts = count_pixels_per_id(tf.constant(ids), 6).numpy()
    for b in range(3):
        expected = np.bincount(ids[b].reshape(-1), minlength=6)[ids[b]]
        assert np.array_equal(counts[b], expected)


def test_merge_things_stuff_void_and_cityscapes_ids():
    # Cityscapes-like: stuff 0 (road) and 1, things 11 and 12; void 255.
    mask_id = np.array([[[1, 1, 2, 3], [4, 4, 4, 5]]], np.int32)
    class_index = np.array([[[2, 2, 3, 0], [1, 1, 0, 0]]], np.int32)
    confident = np.array([[[1, 1, 1, 1], [1, 1, 1, 0]]], bool)
    assignment = SlotAssignment(
        tf.constant(mask_id),
        tf.constant(class_index),
        tf.constant(confident),
        tf.zeros((1, 2, 4)),
        tf.zeros((1, 2, 4)),
    )
    args = dict(
        thing_stuff_class_ids=(11, 12, 0, 1),  # indices 0, 1 things
        num_thing_classes=2,
        ignore_label=255,
        label_divisor=1000,
        num_mask_slots=5,
    )
    panoptic = merge_to_panoptic(assignment, **args).numpy()[0]
    assert panoptic.tolist() == [[0, 0, 1000, 11003], [12004, 12004, 11004, 255000]]
    # Area limits: the 1-pixel thing (slot 3) and 1-pixel stuff class 1 go.
    panoptic = merge_to_panoptic(
        assignment, thing_area_limit=2, stuff_area_limit=2, **args
    ).numpy()[0]
    assert panoptic.tolist() == [[0, 0, 255000, 255000], [12004, 12004, 11004, 255000]]
