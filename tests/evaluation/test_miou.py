"""Semantic mIoU on hand-worked confusion matrices."""

import numpy as np
import pytest

from remax_tf.evaluation.miou import MeanIoU


def test_hand_example_with_ignore_label_zero():
    # Column by column: gt 1 -> 1 (TP), gt 1 -> 2, gt 2 -> 2 twice, gt 3 -> 3,
    # gt 3 -> ignore (a miss), two ignored ground-truth pixels.
    gt = np.array([[1, 1, 2, 2], [3, 3, 0, 0]])
    pred = np.array([[1, 2, 2, 2], [3, 0, 1, 3]])
    miou = MeanIoU(num_classes=4, ignore_label=0)
    miou.update(gt, pred)
    # class 1: 1 / (2 + 1 - 1); class 2: 2 / (2 + 3 - 2); class 3: 1 / (2 + 1 - 1).
    assert miou.per_class_iou() == pytest.approx({1: 0.5, 2: 2 / 3, 3: 0.5})
    assert miou.result() == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)


def test_accumulates_and_skips_absent_classes():
    miou = MeanIoU(num_classes=19, ignore_label=255)
    miou.update(np.array([0, 0, 255]), np.array([0, 0, 5]))
    miou.update(np.array([[1, 1]]), np.array([[1, 0]]))
    # class 0: 2 / (2 + 3 - 2); class 1: 1 / 2; others absent.
    assert miou.per_class_iou() == pytest.approx({0: 2 / 3, 1: 0.5})
    assert miou.result() == pytest.approx((2 / 3 + 0.5) / 2)


def test_bad_ids_raise():
    miou = MeanIoU(num_classes=4, ignore_label=0)
    with pytest.raises(ValueError, match="predicted semantic map holds ids"):
        miou.update(np.array([1]), np.array([9]))
    with pytest.raises(ValueError, match="differs from the ground truth"):
        miou.update(np.array([1, 2]), np.array([1]))
