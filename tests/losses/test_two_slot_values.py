"""Hand-derived loss values on a 2-pixel-by-2 image with two slots.

Layout: dataset id 1 = thing, 2 = stuff, 0 = void (NC = 2, class head 3).
Ground truth (2x2, no striding): pixels 0, 1 = thing instance 0; pixels 2, 3
= stuff. G = max_thing_id (1) + 1 stuff = 2 masks.

Mask logits: pixels 0, 1 -> (ln 3, 0); pixels 2, 3 -> (0, ln 3), so the
softmax over slots is (0.75, 0.25) resp. (0.25, 0.75).
Class logits: slot 0 (ln 2, 0, 0) -> softmax (0.5, 0.25, 0.25);
slot 1 (0, ln 2, 0) -> (0.25, 0.5, 0.25).

Matching: dice(thing, slot 0) = 1.5 / ((2 + 2) / 2) = 0.75, dice(thing,
slot 1) = 0.5 / 2 = 0.25, symmetric for stuff; class similarity 0.5 on the
diagonal, 0.25 off it. Costs -0.375 (diagonal) vs -0.0625: slot q <-> mask q.

PQ class term: both slots matched, CE = -ln 0.5 = ln 2, alpha 0.75, weight =
matched dice 0.75: mean over the two slots = 0.5625 ln 2 = 0.389888;
times the PQ weight 3 -> 1.169664.
PQ dice term: per slot 1 - (2 * 1.5 + 1) / (2 + 2 + 1) = 0.2, weighted by the
class probability 0.5, summed over slots = 0.2, times alpha / NQ = 0.375
-> 0.075; times 3 -> 0.225.
Mask-ID, softmax: -ln 0.75 = 0.287682 per pixel.
Mask-ID, sigmoid: per pixel softplus(-ln 3) + softplus(0) = ln(4/3) + ln 2
= 0.980829.
ReClass, eta = 0.1: y_m(slot 0) = sigmoid means over (thing, stuff) pixels
= (0.75, 0.5), so y_hat = (1, 0.05); slot 1 symmetric. CE = ln 2 +
0.05 ln 4 = 0.762462; class term = 3 * 0.5625 * 0.762462 = 1.286655.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config.resolved import ReMaXSettings
from remax_tf.losses import KMaXLoss
from remax_tf.losses import KMaXLossSettings
from remax_tf.losses.mask_id import mask_id_fp_fn_parts
from remax_tf.losses.targets import ClassLayout

LN2, LN3 = math.log(2.0), math.log(3.0)
LAYOUT = ClassLayout(
    thing_stuff_class_ids=(1, 2), num_thing_classes=1, ignore_label=0, num_classes=3
)
Y_TRUE = {
    common.GT_SEMANTIC_KEY: tf.constant([[[1, 1], [2, 2]]]),
    common.GT_THING_ID_MASK_KEY: tf.constant([[[0, 0], [-1, -1]]]),
    common.GT_THING_ID_CLASS_KEY: tf.constant([[1]]),
}
MASK_LOGITS = np.array(
    [[[[LN3, 0.0], [LN3, 0.0]], [[0.0, LN3], [0.0, LN3]]]], np.float32
)
Y_PRED = {
    common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.constant(MASK_LOGITS),
    common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.constant(
        [[[LN2, 0.0, 0.0], [0.0, LN2, 0.0]]], tf.float32
    ),
}


# ReMaX on with the sigmoid activation, no relaxed stage (there are no
# auxiliary outputs here).
SIGMOID_REMAX = dict(enabled=True, num_relaxed_stages=0, eta=0.1, activation="sigmoid")


def _loss(**remax):
    settings = KMaXLossSettings(
        pq_style_weight=3.0,
        mask_id_weight=1.0,
        remax=ReMaXSettings(**remax) if remax else ReMaXSettings(),
    )
    return KMaXLoss(settings, LAYOUT)(Y_TRUE, Y_PRED)


def test_kmax_values():
    losses = _loss()
    np.testing.assert_allclose(
        float(losses[common.PQ_STYLE_LOSS_CLASS_TERM]), 3 * 0.5625 * LN2, rtol=1e-4
    )
    np.testing.assert_allclose(
        float(losses[common.PQ_STYLE_LOSS_MASK_DICE_TERM]), 0.225, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(losses[common.MASK_ID_CROSS_ENTROPY_LOSS]), -math.log(0.75), rtol=1e-5
    )
    np.testing.assert_allclose(
        float(losses[common.TOTAL_LOSS]),
        3 * 0.5625 * LN2 + 0.225 - math.log(0.75),
        rtol=1e-4,
    )


def test_sigmoid_mask_id_and_reclass_values():
    # The per-pixel sum of the slots' binary terms.
    losses = _loss(**SIGMOID_REMAX, mask_id_sigmoid_reduction="sum")
    np.testing.assert_allclose(
        float(losses[common.MASK_ID_CROSS_ENTROPY_LOSS]),
        math.log(4 / 3) + LN2,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        float(losses[common.PQ_STYLE_LOSS_CLASS_TERM]),
        3 * 0.5625 * (LN2 + 0.05 * math.log(4)),
        rtol=1e-4,
    )
    # The dice term does not depend on the activation (softmax, as kMaX).
    np.testing.assert_allclose(
        float(losses[common.PQ_STYLE_LOSS_MASK_DICE_TERM]), 0.225, rtol=1e-5
    )


def test_sigmoid_mask_id_mean_over_slots():
    # "mean" (the default): the per-pixel sum of the two slots' binary terms,
    # halved (NQ = 2); the other terms do not change.
    summed = _loss(**SIGMOID_REMAX, mask_id_sigmoid_reduction="sum")
    mean = _loss(**SIGMOID_REMAX)
    np.testing.assert_allclose(
        float(mean[common.MASK_ID_CROSS_ENTROPY_LOSS]),
        (math.log(4 / 3) + LN2) / 2,
        rtol=1e-5,
    )
    for term in (common.PQ_STYLE_LOSS_CLASS_TERM, common.PQ_STYLE_LOSS_MASK_DICE_TERM):
        assert float(mean[term]) == float(summed[term]), term


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_fp_fn_parts(activation):
    logits = tf.reshape(tf.constant(MASK_LOGITS), (1, 4, 2))
    targets = tf.constant([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    fp, fn = mask_id_fp_fn_parts(logits, targets, activation)
    if activation == "sigmoid":
        # FN: -ln sigmoid(ln 3) = ln(4/3); FP: -ln(1 - sigmoid(0)) = ln 2.
        np.testing.assert_allclose(
            fn.numpy(), np.full((1, 4), math.log(4 / 3)), rtol=1e-5
        )
        np.testing.assert_allclose(fp.numpy(), np.full((1, 4), LN2), rtol=1e-5)
    else:
        # FN: -ln 0.75 (the kMaX loss); FP: -ln(1 - 0.25) = ln(4/3).
        np.testing.assert_allclose(
            fn.numpy(), np.full((1, 4), -math.log(0.75)), rtol=1e-5
        )
        np.testing.assert_allclose(
            fp.numpy(), np.full((1, 4), math.log(4 / 3)), rtol=1e-5
        )
