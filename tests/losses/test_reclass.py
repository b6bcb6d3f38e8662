"""ReClass (ReMaX Eq. 3-4) on hand-made masks.

Four pixels, two slots, three classes (class 2 absent from the crop):

  slot 0 logits (0, 0, ln 3, ln 3)   -> sigmoid (0.5, 0.5, 0.75, 0.75)
  slot 1 logits (-ln 3, ln 3, 0, 0)  -> sigmoid (0.25, 0.75, 0.5, 0.5)
  S: class 0 on pixels {0, 1}, class 1 on pixel {2}, pixel 3 void.

Eq. (3), per class divided by its area (2, 1, 0 -> guarded):
  y_m[slot 0] = ((0.5 + 0.5) / 2, 0.75 / 1, 0) = (0.5, 0.75, 0)
  y_m[slot 1] = ((0.25 + 0.75) / 2, 0.5 / 1, 0) = (0.5, 0.5, 0)
Slot 0 is matched to class 1, slot 1 is unmatched (zero target row).
Eq. (4) with eta = 0.1: y_hat = 0.1 y_m + (1 - 0.1 y_m) y
  slot 0: (0.05, 0.075 + 0.925, 0) = (0.05, 1, 0);
  slot 1 (every slot is softened, as the paper and the public ReMaX code):
  (0.05, 0.05, 0), plus its void target 1 in the class term.
With eta = 0.2: slot 0 = (0.1, 1, 0), slot 1 = (0.1, 0.1, 0).
With soften_unmatched=False slot 1 stays (0, 0, 0).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.losses import pq_style
from remax_tf.losses.reclass import reclass_targets

LN3 = math.log(3.0)
MASK_LOGITS = np.array(
    [[[0.0, -LN3], [0.0, LN3], [LN3, 0.0], [LN3, 0.0]]], np.float32
)  # [B=1, P=4, NQ=2]
SEMANTIC = np.array(
    [[[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]]], np.float32
)  # [B=1, P=4, NC=3]
TARGETS = np.array([[[0, 1, 0], [0, 0, 0]]], np.float32)  # [B=1, NQ=2, NC=3]


@pytest.mark.parametrize("eta, expected_other", [(0.1, 0.05), (0.2, 0.1)])
def test_hand_derived_values(eta, expected_other):
    got = reclass_targets(MASK_LOGITS, SEMANTIC, TARGETS, eta).numpy()
    e = expected_other
    np.testing.assert_allclose(
        got, [[[e, 1.0, 0.0], [e, e, 0.0]]], rtol=1e-6, atol=1e-7
    )
    matched_only = reclass_targets(
        MASK_LOGITS, SEMANTIC, TARGETS, eta, soften_unmatched=False
    ).numpy()
    np.testing.assert_allclose(
        matched_only, [[[e, 1.0, 0.0], [0.0, 0.0, 0.0]]], rtol=1e-6, atol=1e-7
    )


def test_class_term_with_soft_targets_by_hand():
    # Void appended by the class term: slot 0 (matched) (0.05, 1, 0 | 0),
    # slot 1 (unmatched) (0.05, 0.05, 0 | 1). Zero class logits over NC + 1 = 4
    # classes: log softmax = -ln 4 everywhere, so CE = (sum of targets) ln 4:
    # 1.05 ln 4 and 1.1 ln 4. Alpha 0.75 (void target 0) and 0.25 (void 1),
    # weights 1 and 0.5: mean over the two slots
    # = (0.75 * 1.05 + 0.25 * 0.5 * 1.1) ln 4 / 2 = 0.4625 ln 4.
    soft = reclass_targets(MASK_LOGITS, SEMANTIC, TARGETS, 0.1)
    targets = pq_style.class_term_targets(soft, tf.constant([[1.0, 0.0]]))
    np.testing.assert_allclose(
        targets.numpy(),
        [[[0.05, 1.0, 0.0, 0.0], [0.05, 0.05, 0.0, 1.0]]],
        rtol=1e-6,
        atol=1e-7,
    )
    got = pq_style.class_term(tf.zeros([1, 2, 4]), targets, tf.constant([[1.0, 0.5]]))
    np.testing.assert_allclose(got.numpy(), [0.4625 * math.log(4.0)], rtol=1e-5)


def test_spatial_inputs_and_zero_area_class_are_finite():
    got = reclass_targets(
        MASK_LOGITS.reshape(1, 2, 2, 2), SEMANTIC.reshape(1, 2, 2, 3), TARGETS, 0.1
    )
    assert np.isfinite(got.numpy()).all()
    # A crop with no labelled pixel at all: y_m = 0, targets unchanged.
    empty = reclass_targets(MASK_LOGITS, np.zeros_like(SEMANTIC), TARGETS, 0.1)
    np.testing.assert_array_equal(empty.numpy(), TARGETS)


def test_eta_zero_is_the_one_hot_target():
    got = reclass_targets(MASK_LOGITS, SEMANTIC, TARGETS, 0.0)
    np.testing.assert_array_equal(got.numpy(), TARGETS)


def test_no_gradient_and_nan_propagates():
    logits = tf.Variable(MASK_LOGITS)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(reclass_targets(logits, SEMANTIC, TARGETS, 0.1))
    assert tape.gradient(total, logits) is None
    bad = MASK_LOGITS.copy()
    bad[0, 2, 0] = np.nan
    assert np.isnan(reclass_targets(bad, SEMANTIC, TARGETS, 0.1).numpy()[0, 0, 1])
    with pytest.raises(ValueError, match="eta"):
        reclass_targets(MASK_LOGITS, SEMANTIC, TARGETS, -0.1)
