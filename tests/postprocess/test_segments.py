"""HuggingFace-style segment lists from panoptic maps."""

import numpy as np
import pytest

from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.postprocess import panoptic_segments

D = 256  # shapes_panoptic: things 1..4, stuff 5..7, void 0


@pytest.fixture(scope="module")
def descriptor():
    return get_dataset_descriptor("shapes_panoptic")


def test_segments_format(descriptor):
    panoptic = np.array(
        [[1 * D + 2, 1 * D + 2, 5 * D, 0], [1 * D + 1, 5 * D, 5 * D, 7 * D]]
    )
    scores = np.array([[0.9, 0.7, 0.5, 0.0], [0.6, 0.5, 0.8, 0.4]], np.float32)
    slots = np.array([[3, 3, 4, 1], [2, 4, 5, 6]])
    result = panoptic_segments(panoptic, descriptor, scores=scores, instance_map=slots)
    assert set(result) == {"segmentation", "segments_info"}
    segmentation = result["segmentation"]
    assert segmentation.dtype == np.int32 and segmentation.shape == (2, 4)
    # Ids 1..S in increasing panoptic value: 257, 258, 1280, 1792; void -1.
    assert segmentation.tolist() == [[2, 2, 3, -1], [1, 3, 3, 4]]
    info = result["segments_info"]
    assert [set(s) for s in info] == [{"id", "label_id", "was_fused", "score"}] * 4
    assert [(s["id"], s["label_id"], s["was_fused"]) for s in info] == [
        (1, 1, False),
        (2, 1, False),
        (3, 5, True),  # stuff over slots 4 and 5
        (4, 7, False),
    ]
    assert [s["score"] for s in info] == pytest.approx([0.6, 0.8, 0.6, 0.4])
    assert all(isinstance(s["label_id"], int) for s in info)


def test_batch_and_defaults(descriptor):
    batch = np.zeros((2, 3, 3), np.int32)
    batch[1, 0, 0] = 6 * D
    results = panoptic_segments(batch, descriptor)
    assert isinstance(results, list) and len(results) == 2
    assert (
        results[0]["segments_info"] == [] and (results[0]["segmentation"] == -1).all()
    )
    assert results[1]["segments_info"] == [
        {"id": 1, "label_id": 6, "was_fused": False, "score": None}
    ]


def test_unknown_class_raises(descriptor):
    with pytest.raises(ValueError, match=r"semantic ids \[9\]"):
        panoptic_segments(np.array([[9 * D]]), descriptor)
    with pytest.raises(ValueError, match="scores has shape"):
        panoptic_segments(np.zeros((2, 2), int), descriptor, scores=np.zeros((3, 2)))
