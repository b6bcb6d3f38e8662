"""Class-agnostic things PQ: masks scored with the thing labels ignored."""

import numpy as np

from remax_tf import common
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.evaluation.panoptic_evaluator import PanopticEvaluator
from remax_tf.evaluation.panoptic_evaluator import merge_thing_classes

DIVISOR = 256
# shapes_panoptic: things 1-4, stuff 5-7, void 0.
GROUND = 5


def _scene(first_class: int, second_class: int) -> np.ndarray:
    """Ground on the left, two things (instance 1 of each class) elsewhere."""
    panoptic = np.full((20, 20), GROUND * DIVISOR, np.int64)
    panoptic[2:8, 10:18] = first_class * DIVISOR + 1
    panoptic[12:18, 10:18] = second_class * DIVISOR + 1
    return panoptic


def _evaluate(gt: np.ndarray, pred: np.ndarray) -> dict:
    evaluator = PanopticEvaluator(get_dataset_descriptor("shapes_panoptic"))
    evaluator.update({common.GT_PANOPTIC_KEY: gt[None]}, {"panoptic_pred": pred[None]})
    return evaluator.result()


def test_swapped_labels_score_zero_things_pq_but_full_class_agnostic_pq():
    result = _evaluate(_scene(1, 2), _scene(2, 1))
    assert result["pq_things"] == 0.0
    assert result["pq_things_class_agnostic"] == 1.0
    assert result["sq_things_class_agnostic"] == 1.0
    assert result["pq_stuff"] == 1.0


def test_a_wrong_mask_lowers_both():
    gt = _scene(1, 2)
    pred = _scene(1, 2)
    pred[12:18, 10:18] = GROUND * DIVISOR  # second thing missed
    result = _evaluate(gt, pred)
    # Things: one TP (IoU 1), one FN -> PQ = 1 / (1 + 0.5) for the first class,
    # 0 for the second; merged: one TP, one FN -> 2/3.
    assert np.isclose(result["pq_things"], 0.5)
    assert np.isclose(result["pq_things_class_agnostic"], 2.0 / 3.0)


def test_merging_keeps_instances_of_different_classes_apart():
    panoptic = _scene(1, 2)  # both instance 1
    merged = merge_thing_classes(panoptic, (1, 2, 3, 4), DIVISOR, 1)
    things = np.unique(merged[merged // DIVISOR == 1])
    assert len(things) == 2
    assert np.all(merged[panoptic // DIVISOR == GROUND] == GROUND * DIVISOR)
    # Crowd (instance 0) stays crowd.
    panoptic[0, 0] = 3 * DIVISOR
    assert merge_thing_classes(panoptic, (1, 2, 3, 4), DIVISOR, 1)[0, 0] == DIVISOR
