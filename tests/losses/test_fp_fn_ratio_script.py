"""The per-image FP / FN aggregation of benchmarks/fp_fn_ratio.py, and the
loss's ground truth and matching it measures on (KMaXLoss.match).

Hand-made case, NQ = 3 slots, image 0 with four pixels:

* p0: logits [ln 3, -ln 3, -ln 3], target slot 0, counted.
  sigmoid: FN = -log sigma(ln 3) = ln(4/3); FP = 2 softplus(-ln 3) = 2 ln(4/3).
  softmax: p = [9, 1, 1] / 11; FN = ln(11/9); FP = -2 ln(10/11) = 2 ln(11/10).
* p1: logits [0, 0, 0], target slot 2, counted.
  sigmoid: FN = ln 2; FP = 2 ln 2.  softmax: FN = ln 3; FP = 2 ln(3/2).
* p2: void (target slot 1): not counted.
* p3: no target (its mask went unmatched): not counted.

So image 0 has sigmoid FN = ln(8/3), FP = 2 ln(8/3), ratio exactly 2, and
softmax FN = ln(11/3), FP = 2 ln(33/20), ratio 2 ln(1.65) / ln(11/3) = 0.7708.
Image 1 is all void: FP = FN = 0, and it is left out of the ratios.
"""

import importlib.util
import math

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config.resolved import ReMaXSettings
from remax_tf.losses import KMaXLoss
from remax_tf.losses import KMaXLossSettings
from remax_tf.losses import mask_id
from remax_tf.losses.kmax_loss import flatten_pixels

LN3 = math.log(3.0)


@pytest.fixture(scope="module")
def fp_fn_ratio(repo_root):
    spec = importlib.util.spec_from_file_location(
        "fp_fn_ratio", repo_root / "benchmarks" / "fp_fn_ratio.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _case():
    logits = np.zeros((2, 4, 3), np.float32)
    logits[0, 0] = [LN3, -LN3, -LN3]
    logits[0, 2] = [5.0, -5.0, 5.0]
    logits[0, 3] = [1.0, 2.0, 3.0]
    logits[1] = 4.0
    targets = np.zeros((2, 4, 3), np.float32)
    targets[0, 0, 0] = 1.0
    targets[0, 1, 2] = 1.0
    targets[0, 2, 1] = 1.0
    targets[1, :, 0] = 1.0
    non_void = np.array([[1, 1, 0, 1], [0, 0, 0, 0]], np.float32)
    return tf.constant(logits), tf.constant(targets), tf.constant(non_void)


def test_counted_pixels_follow_the_mask_id_loss(fp_fn_ratio):
    _, targets, non_void = _case()
    counted = fp_fn_ratio.counted_pixels(non_void, targets).numpy()
    np.testing.assert_array_equal(counted, [[1, 1, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    "activation, fp, fn",
    [
        ("sigmoid", 2 * math.log(8 / 3), math.log(8 / 3)),
        ("softmax", 2 * math.log(33 / 20), math.log(11 / 3)),
    ],
)
def test_per_image_sums_by_hand(fp_fn_ratio, activation, fp, fn):
    logits, targets, non_void = _case()
    counted = fp_fn_ratio.counted_pixels(non_void, targets)
    got_fp, got_fn = fp_fn_ratio.per_image_fp_fn(logits, targets, counted, activation)
    np.testing.assert_allclose(got_fp.numpy(), [fp, 0.0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_fn.numpy(), [fn, 0.0], rtol=1e-5, atol=1e-7)
    log_ratios = fp_fn_ratio.log10_ratios(
        got_fp.numpy(), got_fn.numpy(), counted.numpy().sum(axis=1)
    )
    # The all-void image is dropped; image 0 keeps log10(FP / FN).
    np.testing.assert_allclose(log_ratios, [math.log10(fp / fn)], rtol=1e-5)


def test_sigmoid_ratio_is_exactly_two_and_softmax_below_one(fp_fn_ratio):
    logits, targets, non_void = _case()
    counted = fp_fn_ratio.counted_pixels(non_void, targets)
    ratios = {}
    for activation in ("sigmoid", "softmax"):
        fp, fn = fp_fn_ratio.per_image_fp_fn(logits, targets, counted, activation)
        ratios[activation] = float(fp[0] / fn[0])
    assert ratios["sigmoid"] == pytest.approx(2.0, rel=1e-5)
    assert ratios["softmax"] == pytest.approx(
        2 * math.log(1.65) / math.log(11 / 3), rel=1e-5
    )
    assert ratios["softmax"] == pytest.approx(0.7708, abs=1e-4)


def test_ratio_statistics(fp_fn_ratio):
    # Ratios 1, 10, 10^2.5, 1000: quartiles of the log10 values 0.75/1.75/2.625.
    stats = fp_fn_ratio.ratio_statistics([0.0, 1.0, 2.5, 3.0])
    assert stats["count"] == 4
    assert stats["median"] == pytest.approx(10**1.75)
    assert stats["q1"] == pytest.approx(10**0.75)
    assert stats["q3"] == pytest.approx(10**2.625)
    assert stats["geometric_mean"] == pytest.approx(10**1.625)
    assert stats["share_over_100"] == 0.5
    assert stats["share_under_1"] == 0.0
    assert fp_fn_ratio.ratio_statistics([]) == {"count": 0}


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_the_loss_match_is_what_its_mask_id_term_reads(
    layout, make_gt, make_pred, activation
):
    """The script measures on KMaXLoss.match: the final output's mask-ID
    term of the loss is the cross-entropy on exactly those targets."""
    remax = ReMaXSettings(enabled=True, num_relaxed_stages=1, activation=activation)
    loss = KMaXLoss(
        KMaXLossSettings(mask_id_weight=1.0, num_auxiliary_outputs=2, remax=remax),
        layout,
    )
    y_true, y_pred = make_gt(), make_pred(num_relaxed=1, remax=remax)
    outputs, gt, matching = loss.match(y_true, y_pred)
    assert len(outputs) == 3
    logits = flatten_pixels(outputs[0][common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY])
    expected = mask_id.mask_id_cross_entropy(
        logits,
        matching.slot_pixel_targets,
        gt.pixel_non_void,
        activation,
        1.0,
        remax.mask_id_sigmoid_reduction,
    )
    got = loss(y_true, y_pred)[common.MASK_ID_CROSS_ENTROPY_LOSS]
    np.testing.assert_allclose(float(got), float(tf.reduce_mean(expected)), rtol=1e-6)
