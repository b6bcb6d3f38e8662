"""The trainer-facing evaluator on the real COCO sample, in DeepLab2 encoding."""

import json
import os

import numpy as np
import pytest

from remax_tf import common
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.evaluation import PanopticEvaluator
from remax_tf.evaluation import coco_panoptic
from remax_tf.protos import evaluator_pb2


@pytest.fixture(scope="module")
def coco(testdata):
    root = testdata / "coco_panoptic_sample"
    data = json.loads((root / "panoptic_examples.json").read_text())
    descriptor = get_dataset_descriptor("coco_panoptic")
    images = []
    for annotation in data["annotations"]:
        ids = coco_panoptic.load_id_png(
            str(root / "panoptic_examples" / annotation["file_name"])
        )
        panoptic, semantic, crowd = coco_panoptic.coco_to_deeplab2(
            ids, annotation["segments_info"], descriptor
        )
        images.append((annotation["image_id"], panoptic, semantic, crowd))
    return descriptor, images


def _pad(array, shape, value=0):
    out = np.full(shape, value, array.dtype)
    out[: array.shape[0], : array.shape[1]] = array
    return out


def _batch(images):
    """Both images in one batch, raw labels padded to a common size."""
    shape = (max(i[1].shape[0] for i in images), max(i[1].shape[1] for i in images))
    sample = {
        common.GT_PANOPTIC_RAW: np.stack([_pad(i[1], shape) for i in images]),
        common.GT_SEMANTIC_RAW: np.stack([_pad(i[2], shape) for i in images]),
        common.GT_IS_CROWD_RAW: np.stack([_pad(i[3], shape) for i in images]),
        common.GT_SIZE_RAW: np.array([i[1].shape for i in images]),
        common.IMAGE_NAME: np.array([str(i[0]) for i in images]),
    }
    return sample, shape


def test_ground_truth_scores_perfectly(coco, tmp_path):
    descriptor, images = coco
    evaluator = PanopticEvaluator(descriptor, compute_mask_ap=True)
    for image in images:
        _, panoptic, semantic, crowd = image
        sample = {
            common.GT_PANOPTIC_RAW: panoptic[None],
            common.GT_SEMANTIC_RAW: semantic[None],
            common.GT_IS_CROWD_RAW: crowd[None],
        }
        # Crowd pixels predicted as their class (instance 0): not false positives.
        prediction = {
            common.PRED_PANOPTIC_KEY: np.where(crowd == 1, semantic * 256, panoptic)[
                None
            ],
            common.PRED_SEMANTIC_KEY: semantic[None],
        }
        evaluator.update(sample, prediction)
    result = evaluator.write_json(str(tmp_path / "eval" / "results.json"))
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff", "miou"):
        assert result[key] == 1.0, key
    assert result["num_images"] == 2
    assert result["panoptic_quality"]["All"]["n"] == 8
    assert result["per_class"][1]["name"] == "person"
    assert result["per_class"][1]["tp"] == 26
    assert result["mask_ap"]["AP"] == pytest.approx(1.0)
    written = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert written["pq"] == 1.0 and written["per_class"]["1"]["isthing"] is True
    assert os.listdir(tmp_path / "eval") == ["results.json"]


def test_batched_padded_labels_and_padded_predictions(coco):
    """Raw labels padded for batching are cropped with size_raw; predictions at a
    padded input size are cut back with resized_size or resized_image."""
    descriptor, images = coco
    sample, shape = _batch(images)
    padded_shape = (shape[0] + 6, shape[1] + 1)
    predictions = np.stack([_pad(i[1], padded_shape) for i in images])
    predictions[1, 100:140, 200:300] = 3 * 256 + 9  # a car where there is none
    sample_single = {k: v[:1] for k, v in sample.items()}
    sample_single[common.RESIZED_IMAGE] = np.zeros((1,) + images[0][1].shape + (3,))
    evaluator = PanopticEvaluator(descriptor)
    evaluator.update(sample_single, {common.PRED_PANOPTIC_KEY: predictions[:1]})
    assert evaluator.result()["pq"] == 1.0
    sample_second = {k: v[1:] for k, v in sample.items()}
    sample_second[common.RESIZED_SIZE] = np.array([images[1][1].shape])
    evaluator.update(sample_second, {common.PRED_PANOPTIC_KEY: predictions[1:]})
    result = evaluator.result()
    assert result["per_class"][3]["fp"] == 1
    assert result["pq"] < 1.0
    # The same batch at once, predictions already at the labels' size.
    batched = PanopticEvaluator(descriptor)
    batched.update(
        sample, {common.PRED_PANOPTIC_KEY: predictions[:, : shape[0], : shape[1]]}
    )
    assert batched.result()["panoptic_quality"] == result["panoptic_quality"]


def test_missing_inputs_raise(coco):
    descriptor, images = coco
    evaluator = PanopticEvaluator(descriptor, evaluator_pb2.EvaluatorOptions())
    assert evaluator.mask_ap is None
    panoptic = images[0][1][None]
    with pytest.raises(KeyError, match="panoptic_pred"):
        evaluator.update({common.GT_PANOPTIC_KEY: panoptic}, {})
    with pytest.raises(ValueError, match="undo the resize and padding"):
        evaluator.update(
            {common.GT_PANOPTIC_KEY: panoptic},
            {common.PRED_PANOPTIC_KEY: np.zeros((1, 5, 5), np.int32)},
        )
