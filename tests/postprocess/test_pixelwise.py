"""Pixel-wise post-processing and the threshold-free semantic map."""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.postprocess.pixelwise import argmax_semantic
from remax_tf.postprocess.pixelwise import pixelwise_assignment

THING_STUFF_IDS = (1, 2, 3, 4, 5, 6, 7)


def class_logits(specs):
    rows = []
    for index, confidence in specs:
        probs = np.full(
            len(THING_STUFF_IDS) + 1, (1.0 - confidence) / len(THING_STUFF_IDS)
        )
        probs[index] = confidence
        rows.append(np.log(probs))
    return tf.constant(np.array(rows)[None], tf.float32)


def _masks():
    # Slot 0 wins rows 0-3 (logit 10 vs 0), slot 1 wins rows 4-7 (10 vs 0).
    logits = np.zeros((1, 8, 8, 2), np.float32)
    logits[0, :4, :, 0] = 10.0
    logits[0, 4:, :, 1] = 10.0
    return tf.constant(logits)


@pytest.mark.parametrize(
    "class_threshold, rows_4_8_covered", [(0.7, False), (0.4, True)]
)
def test_pixels_of_a_removed_slot_are_void(class_threshold, rows_4_8_covered):
    # Slot 1 (conf 0.5) is removed at threshold 0.7: its pixels would go to
    # slot 0 after the removal, but slot 0 was not their best slot.
    classes = class_logits([(0, 0.9), (4, 0.5)])
    assignment = pixelwise_assignment(_masks(), classes, 0.4, class_threshold)
    confident = assignment.confident.numpy()[0]
    assert confident[:4].all()
    assert (
        confident[4:].all() == rows_4_8_covered
        and confident[4:].any() == rows_4_8_covered
    )
    slots = assignment.mask_id_plus_one.numpy()[0]
    assert (slots[:4] == 1).all()
    if rows_4_8_covered:
        assert (slots[4:] == 2).all()
        assert (assignment.class_index.numpy()[0, 4:] == 4).all()
        assert assignment.semantic_score.numpy()[0, 5, 0] == pytest.approx(0.5)


def test_pixel_threshold_and_empty_image():
    logits = np.zeros((1, 8, 8, 3), np.float32)  # 1/3 everywhere
    logits[0, :2, :, 0] = 10.0
    classes = class_logits([(0, 0.9), (1, 0.9), (2, 0.9)])
    assignment = pixelwise_assignment(tf.constant(logits), classes, 0.4, 0.7)
    confident = assignment.confident.numpy()[0]
    assert confident[:2].all() and not confident[2:].any()
    empty = pixelwise_assignment(
        tf.constant(logits), class_logits([(0, 0.3)] * 3), 0.4, 0.7
    )
    assert not empty.confident.numpy().any()
    assert (empty.mask_id_plus_one.numpy() == 1).all()
    assert (empty.instance_score.numpy() == 0).all()


def test_argmax_semantic_ignores_thresholds():
    classes = class_logits([(0, 0.9), (5, 0.2)])
    semantic = argmax_semantic(_masks(), classes, THING_STUFF_IDS).numpy()[0]
    assert (semantic[:4] == 1).all() and (semantic[4:] == 6).all()
