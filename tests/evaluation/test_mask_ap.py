"""Mask AP through pycocotools on tiny, hand-checkable images."""

import numpy as np
import pytest

from remax_tf.evaluation.mask_ap import MaskAP

DIVISOR = 256


def _box(y0, y1, x0, x1, shape=(20, 20)):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_perfect_and_partial_detections():
    ap = MaskAP(thing_class_ids=[1, 2])
    ap.update([_box(0, 10, 0, 10)], [1], [False], [_box(0, 10, 0, 10)], [1], [0.9])
    assert ap.result()["AP"] == pytest.approx(1.0)
    ap.reset()
    # IoU 100 / 160 = 0.625 passes the thresholds 0.50, 0.55, 0.60 of ten.
    ap.update([_box(0, 10, 0, 10)], [1], [False], [_box(0, 10, 0, 16)], [1], [0.9])
    result = ap.result()
    assert result["AP"] == pytest.approx(0.3)
    assert result["AP50"] == pytest.approx(1.0)
    assert result["AP75"] == pytest.approx(0.0)


def _panoptic_pair(crowd_class):
    gt = np.full((20, 20), 7 * DIVISOR)
    gt[0:10, 0:10] = 1 * DIVISOR + 1
    gt[15:20, :] = crowd_class * DIVISOR  # instance 0: crowd
    pred = np.full((20, 20), 7 * DIVISOR)
    pred[0:10, 0:10] = 1 * DIVISOR + 1
    pred[15:20, :] = 1 * DIVISOR + 2
    return gt, pred


@pytest.mark.parametrize("crowd_class, expected_ap", [(1, 1.0), (2, 0.5)])
def test_detection_on_crowd(crowd_class, expected_ap):
    """On a same-class crowd a detection is ignored; on another class it is an FP."""
    gt, pred = _panoptic_pair(crowd_class)
    ap = MaskAP(thing_class_ids=[1, 2])
    # The detection on the crowd scores higher than the true positive.
    ap.update_from_panoptic(gt, pred, DIVISOR, {257: 0.8, 258: 0.9})
    assert ap.result()["AP"] == pytest.approx(expected_ap)


def test_no_detection_gives_zeros():
    ap = MaskAP(thing_class_ids=[1])
    ap.update([_box(0, 5, 0, 5)], [1], [False], [], [], [])
    assert set(ap.result().values()) == {0.0}
