"""Thing label accuracy and confusions: which label each found thing got."""

import numpy as np

from remax_tf import common
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.evaluation.panoptic_evaluator import PanopticEvaluator
from remax_tf.evaluation.thing_labels import ThingLabelConfusion

DIVISOR = 256
# shapes_panoptic: things 1-4, stuff 5-7, void 0.
GROUND = 5
THINGS = (1, 2, 3, 4)


def _scene(*classes: int) -> np.ndarray:
    """Ground, then one 6x8 thing per class given (instances 1, 2, ...)."""
    panoptic = np.full((40, 20), GROUND * DIVISOR, np.int64)
    for k, thing_class in enumerate(classes):
        panoptic[2 + 10 * k : 8 + 10 * k, 10:18] = thing_class * DIVISOR + k + 1
    return panoptic


def _confusion(gt: np.ndarray, pred: np.ndarray) -> dict:
    labels = ThingLabelConfusion(THINGS, DIVISOR, ignore_label=0)
    labels.update(gt, pred)
    return labels.result()


def test_counts_right_and_wrong_labels_of_found_things():
    gt = _scene(1, 2, 3, 4)
    pred = _scene(1, 3, 3, 1)
    pred[32:38, 10:18] = GROUND * DIVISOR  # the fourth thing is not found
    result = _confusion(gt, pred)
    assert result["things"] == 4
    assert result["things_found"] == 3
    assert np.isclose(result["thing_label_accuracy"], 2 / 3)
    assert result["thing_label_confusions"] == [
        {"ground_truth": 2, "predicted": 3, "count": 1}
    ]


def test_a_mask_at_iou_one_half_or_less_finds_nothing():
    gt = _scene(1)
    pred = np.full_like(gt, GROUND * DIVISOR)
    pred[2:8, 10:14] = 1 * DIVISOR + 1  # half of the thing: IoU exactly 0.5
    result = _confusion(gt, pred)
    assert result["things_found"] == 0
    assert result["thing_label_accuracy"] is None
    pred[2:8, 10:15] = 1 * DIVISOR + 1  # 5 of 8 columns: IoU 0.625
    assert _confusion(gt, pred)["things_found"] == 1


def test_stuff_covering_a_thing_and_crowd_are_not_found_things():
    gt = _scene(1, 2)
    gt[12:18, 10:18] = 2 * DIVISOR  # instance 0: crowd
    pred = _scene(1, 2)
    pred[2:8, 10:18] = 6 * DIVISOR  # stuff over the first thing
    result = _confusion(gt, pred)
    assert result["things"] == 1
    assert result["things_found"] == 0


def test_found_things_equal_the_class_agnostic_true_positives():
    rng = np.random.default_rng(0)
    evaluator = PanopticEvaluator(get_dataset_descriptor("shapes_panoptic"))
    for _ in range(20):
        gt = _scene(*rng.integers(1, 5, 4))
        pred = _scene(*rng.integers(1, 5, 4))
        # Shift some predicted things so that a few stop matching.
        pred = np.roll(pred, rng.integers(0, 4), axis=1)
        evaluator.update(
            {common.GT_PANOPTIC_KEY: gt[None]}, {"panoptic_pred": pred[None]}
        )
    result = evaluator.result()
    merged = evaluator.class_agnostic.stat.per_class[evaluator._merged_id]
    assert 0 < result["things_found"] < result["things"]
    assert result["things_found"] == merged.tp
    right = sum(
        evaluator.panoptic_quality.stat.per_class[c].tp
        for c in THINGS
        if c in evaluator.panoptic_quality.stat.per_class
    )
    assert np.isclose(result["thing_label_accuracy"], right / merged.tp)
    named = result["thing_label_confusions"][0]
    assert named["ground_truth"] in ("disc", "triangle", "square", "star")
    counts = [c["count"] for c in result["thing_label_confusions"]]
    assert counts == sorted(counts, reverse=True)
