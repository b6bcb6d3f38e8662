"""Hand-worked cases of the official PQ rules, on id maps and on DeepLab2 maps."""

import numpy as np
import pytest

from remax_tf.evaluation.panoptic_quality import PanopticQuality
from remax_tf.evaluation.panoptic_quality import PQStat
from remax_tf.evaluation.panoptic_quality import accumulate_image
from remax_tf.evaluation.panoptic_quality import deeplab2_to_segments

CATEGORIES = {1: True, 2: True, 7: False}


def _segments(ids, spec):
    """spec: {id: (category, iscrowd)} -> segments with areas counted."""
    return {
        i: {"category_id": c, "iscrowd": crowd, "area": int((ids == i).sum())}
        for i, (c, crowd) in spec.items()
    }


def _stat(gt, gt_spec, pred, pred_categories):
    stat = PQStat()
    accumulate_image(
        stat,
        gt,
        _segments(gt, gt_spec),
        pred,
        {i: {"category_id": c} for i, c in pred_categories.items()},
        categories=CATEGORIES,
    )
    return stat


def test_iou_of_exactly_one_half_is_no_match():
    # gt: person (id 1) on 4 pixels, sky (id 2) on 4; prediction person on all 8.
    gt = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    pred = np.full_like(gt, 9)
    stat = _stat(gt, {1: (1, 0), 2: (7, 0)}, pred, {9: 1})
    person = stat[1]
    assert (person.tp, person.fp, person.fn) == (0, 1, 1)
    assert stat[7].fn == 1


def test_prediction_pixels_on_void_leave_the_union():
    # Same, but the extra 4 pixels are void: IoU = 4 / (4 + 8 - 4 - 4) = 1.
    gt = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    stat = _stat(gt, {1: (1, 0)}, np.full_like(gt, 9), {9: 1})
    assert (stat[1].tp, stat[1].fp, stat[1].fn, stat[1].iou) == (1, 0, 0, 1.0)


def test_iou_value_and_averages():
    # person 6 px, prediction covers 5 of them + 1 sky pixel: IoU = 5 / 7.
    # sky 6 px, predicted as 5 px: IoU = 5 / 6. Car predicted, nothing there.
    gt = np.array([[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2]])
    pred = np.array([[5, 5, 5, 5, 6, 6], [5, 5, 0, 6, 6, 6]])
    pred[0, 5] = 8
    stat = _stat(gt, {1: (1, 0), 2: (7, 0)}, pred, {5: 1, 6: 7, 8: 2})
    assert stat[1].iou == pytest.approx(5 / 7)
    assert stat[7].iou == pytest.approx(4 / 6)
    results = stat.results(CATEGORIES)
    # car: 1 FP -> PQ 0, SQ 0, RQ 0 but counted.
    assert results["Things"]["n"] == 2 and results["Stuff"]["n"] == 1
    assert results["Things"]["pq"] == pytest.approx((5 / 7 + 0) / 2)
    assert results["All"]["sq"] == pytest.approx((5 / 7 + 0 + 4 / 6) / 3)
    assert results["All"]["rq"] == pytest.approx(2 / 3)
    assert results["per_class"][2] == {"pq": 0.0, "sq": 0.0, "rq": 0.0}


def test_classes_without_segments_are_not_averaged():
    stat = PQStat()
    results = stat.results(CATEGORIES)
    assert results["All"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
    assert set(results["per_class"]) == set(CATEGORIES)


@pytest.mark.parametrize("crowd_order, expected_fp", [((5, 6), 1), ((6, 5), 0)])
def test_last_crowd_segment_of_a_category_is_the_crowd_region(crowd_order, expected_fp):
    """panopticapi keeps one crowd segment per category: the last one listed."""
    gt = np.array([[5, 5, 6, 6], [5, 5, 6, 6]])
    pred = np.array([[9, 9, 0, 0], [9, 9, 0, 0]])  # on crowd segment 5 only
    spec = {i: (1, 1) for i in crowd_order}
    stat = _stat(gt, spec, pred, {9: 1})
    assert stat[1].fp == expected_fp
    assert stat[1].fn == 0


def test_crowd_of_another_category_does_not_excuse():
    gt = np.array([[5, 5, 0, 1], [5, 5, 1, 1]])
    pred = np.array([[9, 9, 9, 0], [9, 9, 0, 0]])  # 4 on crowd + 1 on void
    assert _stat(gt, {5: (2, 1), 1: (7, 0)}, pred, {9: 1})[1].fp == 1
    assert _stat(gt, {5: (1, 1), 1: (7, 0)}, pred, {9: 1})[1].fp == 0


def test_deeplab2_maps_crowd_from_instance_zero():
    # COCO-like: divisor 256, ignore 0; thing 1 with instance 0 is crowd.
    divisor = 256
    gt = np.array(
        [
            [1 * divisor + 1, 1 * divisor + 1, 1 * divisor, 1 * divisor],
            [7 * divisor] * 4,
        ]
    )
    pq = PanopticQuality(CATEGORIES, divisor, ignore_label=0)
    pred = gt.copy()
    pq.update(gt, pred)
    assert pq.stat[1].tp == 1 and pq.stat[1].fp == 0  # prediction on its crowd
    pred[0, 2:] = 2 * divisor + 1  # another class on the person crowd: FP
    pq.update(gt, pred)
    assert pq.stat[2].fp == 1
    assert pq.result()["All"]["n"] == 3


def test_deeplab2_maps_crowd_from_crowd_and_semantic_maps():
    # DeepLab2's pipeline writes the ignore label on crowd pixels of the
    # panoptic map and keeps their class in the semantic map.
    divisor = 256
    gt = np.array([[257, 257, 0, 0], [7 * 256] * 4])
    crowd = np.array([[0, 0, 1, 1], [0] * 4])
    semantic = np.array([[1, 1, 1, 1], [7] * 4])
    pred = np.array([[257, 257, 258, 258], [7 * 256] * 4])
    pq = PanopticQuality(CATEGORIES, divisor, ignore_label=0)
    pq.update(gt, pred, crowd, semantic)
    assert (pq.stat[1].tp, pq.stat[1].fp) == (1, 0)
    # Without the semantic map the crowd pixels are plain void: still ignored.
    pq.reset()
    pq.update(gt, pred, crowd)
    assert (pq.stat[1].tp, pq.stat[1].fp) == (1, 0)
    ids, segments = deeplab2_to_segments(gt, divisor, 0, (1, 2), crowd, semantic)
    crowd_segments = [s for s in segments.values() if s["iscrowd"]]
    assert crowd_segments == [{"category_id": 1, "iscrowd": 1, "area": 2}]
    assert (ids == 0).sum() == 0


def test_cityscapes_encoding_class_zero_is_a_class():
    # Cityscapes: ignore 255, divisor 1000, road = 0 is a stuff class.
    categories = {0: False, 11: True}
    gt = np.array([[0, 0, 11001, 11001], [255000, 255000, 11002, 11002]])
    pred = np.array([[0, 0, 11005, 11005], [0, 0, 255000, 255000]])
    pq = PanopticQuality(categories, 1000, ignore_label=255)
    pq.update(gt, pred)
    # road: 2 gt px, 4 pred px of which 2 on void -> IoU 1.
    assert (pq.stat[0].tp, pq.stat[0].iou) == (1, 1.0)
    assert (pq.stat[11].tp, pq.stat[11].fn) == (1, 1)
    assert pq.result()["Things"]["pq"] == pytest.approx(1 / 1.5)


def test_unknown_predicted_class_raises():
    pq = PanopticQuality(CATEGORIES, 256, ignore_label=0)
    with pytest.raises(ValueError, match=r"predicted semantic ids \[3\]"):
        pq.update(np.zeros((2, 2), int), np.full((2, 2), 3 * 256))
    with pytest.raises(ValueError, match="prediction shape"):
        pq.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
