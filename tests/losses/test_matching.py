"""kMaX matching on the final prediction, in slot order."""

import numpy as np
import tensorflow as tf

from remax_tf import common
from remax_tf.losses.matching import dice_similarity
from remax_tf.losses.matching import match_predictions
from remax_tf.losses.targets import build_ground_truth


def test_dice_similarity_by_hand():
    gt = tf.constant([[[1.0], [1.0], [0.0]]])  # [B=1, P=3, G=1]
    pred = tf.constant([[[0.5], [1.0], [0.5]]])  # [B=1, P=3, Q=1]
    # 1.5 / ((2 + 2) / 2 + 1e-5)
    np.testing.assert_allclose(dice_similarity(gt, pred).numpy(), [[[1.5 / 2.00001]]])


def _match(layout, make_gt, make_pred, kind, num_slots):
    gt = build_ground_truth(make_gt(kind), (5, 9), layout)
    pred = make_pred(num_slots=num_slots, num_aux=0)
    logits = tf.reshape(
        pred[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY], (2, 45, num_slots)
    )
    return gt, match_predictions(
        gt, logits, pred[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY]
    )


def test_every_valid_mask_gets_a_slot(layout, make_gt, make_pred):
    gt, matching = _match(layout, make_gt, make_pred, "crowded", num_slots=8)
    perm = matching.permutation.numpy()
    np.testing.assert_array_equal(perm.sum(axis=2), gt.mask_non_void.numpy())
    np.testing.assert_array_equal(matching.slot_matched.numpy(), perm.sum(axis=1))
    # Slot targets are the matched masks; class targets their classes.
    np.testing.assert_array_equal(
        matching.slot_pixel_targets.numpy().sum(axis=1),
        np.einsum("bg,bgq->bq", gt.mask_area.numpy(), perm),
    )
    np.testing.assert_array_equal(
        matching.slot_class_one_hot.numpy().sum(-1), matching.slot_matched.numpy()
    )


def test_more_masks_than_slots_fills_every_slot(layout, make_gt, make_pred):
    gt, matching = _match(layout, make_gt, make_pred, "crowded", num_slots=2)
    assert gt.mask_non_void.numpy().sum(axis=1).min() > 2
    np.testing.assert_array_equal(matching.slot_matched.numpy(), np.ones((2, 2)))
    # Each pixel has at most one target slot; pixels of unmatched masks none.
    assert matching.slot_pixel_targets.numpy().sum(-1).max() == 1.0
