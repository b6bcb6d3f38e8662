"""Synthetic ground truth and predictions for the loss tests.

A tiny layout: dataset ids 0 (void), 1-2 things, 3-4 stuff, so NC = 4 and the
class head has 5 outputs. Crops are 9x17 and the mask logits 5x9 (stride 2).
"""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config.resolved import ReMaXSettings
from remax_tf.losses.targets import ClassLayout
from remax_tf.model.remask import ReMask

CROP = (9, 17)
OUTPUT = (5, 9)
MAX_THING_ID = 4


@pytest.fixture(scope="session")
def layout() -> ClassLayout:
    return ClassLayout(
        thing_stuff_class_ids=(1, 2, 3, 4),
        num_thing_classes=2,
        ignore_label=0,
        num_classes=5,
    )


def make_ground_truth(kind: str = "normal", batch: int = 2) -> dict:
    """kinds: normal, no_things, all_void, one_pixel, crowded."""
    height, width = CROP
    semantic = np.full((batch, height, width), 3, np.int32)
    semantic[:, :, 12:] = 4
    semantic[:, 0, :] = 0  # a void row
    thing_id = -np.ones((batch, height, width), np.int32)
    thing_class = -np.ones((batch, MAX_THING_ID), np.int32)
    if kind in ("normal", "crowded"):
        thing_id[:, 2:6, 2:7] = 0
        semantic[:, 2:6, 2:7] = 1
        thing_class[:, 0] = 1
        thing_id[:, 4:9, 8:12] = 1
        semantic[:, 4:9, 8:12] = 2
        thing_class[:, 1] = 2
        semantic[:, 7:9, 0:2] = 1  # a crowd region: thing class, no id
    if kind == "crowded":
        thing_id[:, 1:3, 13:15] = 2
        semantic[:, 1:3, 13:15] = 1
        thing_class[:, 2] = 1
        thing_id[:, 6:8, 14:17] = 3
        semantic[:, 6:8, 14:17] = 2
        thing_class[:, 3] = 2
    if kind == "one_pixel":
        # Pixel (2, 2) survives the stride-2 sampling, (3, 5) does not.
        thing_id[:, 2, 2] = 0
        semantic[:, 2, 2] = 1
        thing_class[:, 0] = 1
        thing_id[:, 3, 5] = 1
        semantic[:, 3, 5] = 2
        thing_class[:, 1] = 2
    if kind == "all_void":
        semantic[:] = 0
    if kind == "no_things":
        pass
    return {
        common.GT_SEMANTIC_KEY: tf.constant(semantic),
        common.GT_THING_ID_MASK_KEY: tf.constant(thing_id),
        common.GT_THING_ID_CLASS_KEY: tf.constant(thing_class),
        common.SEMANTIC_LOSS_WEIGHT_KEY: tf.ones((batch, height, width)),
        common.GT_PANOPTIC_KEY: tf.zeros((batch, height, width), tf.int32),
        common.GT_IS_CROWD: tf.zeros((batch, height, width), tf.int32),
    }


def make_prediction(
    num_slots: int = 6,
    num_aux: int = 2,
    num_relaxed: int = 0,
    batch: int = 2,
    seed: int = 0,
    num_classes: int = 4,
    num_dataset_classes: int = 5,
    scale: float = 2.0,
    remax: ReMaXSettings = ReMaXSettings(enabled=True),
) -> dict:
    """Random predictions; the first ``num_relaxed`` auxiliary outputs carry
    m_sem and the mask logits relaxed by ``ReMask`` with ``remax``'s settings,
    as the model's training forward pass returns them."""
    rng = np.random.default_rng(seed)
    height, width = OUTPUT

    def output(relaxed: bool) -> dict:
        feature = rng.normal(size=(batch, height, width, 8)).astype(np.float32)
        result = {
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.constant(
                scale * rng.normal(size=(batch, height, width, num_slots)), tf.float32
            ),
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.constant(
                scale * rng.normal(size=(batch, num_slots, num_classes + 1)),
                tf.float32,
            ),
            common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY: tf.math.l2_normalize(
                tf.constant(feature), axis=-1
            ),
        }
        if relaxed:
            result[common.PRED_REMAX_SEMANTIC_LOGITS_KEY] = tf.constant(
                scale * rng.normal(size=(batch, height, width, num_classes)),
                tf.float32,
            )
            result[common.PRED_RELAXED_MASK_LOGITS_KEY] = relax(result, remax)
        return result

    prediction = output(False)
    prediction[common.PRED_SEMANTIC_LOGITS_KEY] = tf.constant(
        rng.normal(size=(batch, height, width, num_dataset_classes)), tf.float32
    )
    prediction[common.PRED_AUXILIARY_OUTPUTS] = tuple(
        output(i < num_relaxed) for i in range(num_aux)
    )
    return prediction


def relax(output: dict, remax: ReMaXSettings) -> tf.Tensor:
    """The relaxed mask logits the model's ReMask layer gives ``output``."""
    return ReMask.from_settings(remax)(
        [
            output[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY],
            output[common.PRED_REMAX_SEMANTIC_LOGITS_KEY],
            output[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY],
        ],
        training=True,
    )


@pytest.fixture(scope="session")
def relax_output():
    """relax_output(output, remax) -> the output's ReMask-relaxed logits."""
    return relax


@pytest.fixture(scope="session")
def make_gt():
    """Factory: make_gt(kind='normal', batch=2) -> ground-truth dict."""
    return make_ground_truth


@pytest.fixture(scope="session")
def make_pred():
    """Factory: make_pred(num_slots=6, num_aux=2, num_relaxed=0, ...) -> dict."""
    return make_prediction
