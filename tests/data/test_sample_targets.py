"""kMaX targets on the real samples: one mask per thing instance, stuff by
class, void and crowd excluded, counts as in the annotations."""

import json

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.data import datasets
from remax_tf.data import sample_targets
from remax_tf.data import tfrecord

COCO = datasets.get_dataset_descriptor("coco_panoptic")
CITYSCAPES = datasets.get_dataset_descriptor("cityscapes_panoptic")


def _targets(label, descriptor, max_thing_id=128, **kwargs):
    out = sample_targets.build_targets(
        tf.constant(label),
        label_divisor=descriptor.panoptic_label_divisor,
        ignore_label=descriptor.ignore_label,
        thing_ids=descriptor.thing_class_ids,
        max_thing_id=max_thing_id,
        image_name="sample",
        **kwargs,
    )
    return {k: v.numpy() for k, v in out.items()}


def _check_thing_masks(out, label, descriptor, expected_things):
    divisor = descriptor.panoptic_label_divisor
    mask, classes = out[common.GT_THING_ID_MASK_KEY], out[common.GT_THING_ID_CLASS_KEY]
    count = len(expected_things)
    assert set(np.unique(mask).tolist()) == set(range(-1, count))
    np.testing.assert_array_equal(classes[count:], -1)
    # Each thing id is exactly one instance's pixels, with its class.
    for thing_id in range(count):
        values = np.unique(label[mask == thing_id])
        assert len(values) == 1
        assert values[0] // divisor == classes[thing_id]
        assert values[0] % divisor > 0
    # Thing ids follow the first appearance in raster order (tf.unique).
    first = [np.argmax((mask == t).ravel()) for t in range(count)]
    assert first == sorted(first)
    assert sorted(classes[:count].tolist()) == sorted(expected_things)
    # Void, stuff and crowd pixels belong to no thing.
    instance = label % divisor
    assert np.all(mask[instance == 0] == -1)


def test_coco_sample_targets(coco_records, coco_sample):
    data = json.loads((coco_sample / "panoptic_examples.json").read_text())
    mapping = {c["id"]: i + 1 for i, c in enumerate(data["categories"])}
    by_name = {a["file_name"][:-4]: a for a in data["annotations"]}
    counts = {}
    for record in tfrecord.read_examples(str(coco_records / "val-*.tfrecord")):
        label = record["label"]
        segments = by_name[record["image_name"].decode()]["segments_info"]
        things = [
            mapping[s["category_id"]]
            for s in segments
            if not s["iscrowd"] and mapping[s["category_id"]] in COCO.thing_class_ids
        ]
        stuff = {mapping[s["category_id"]] for s in segments} - set(
            COCO.thing_class_ids
        )
        out = _targets(label, COCO)
        _check_thing_masks(out, label, COCO, things)
        semantic = out[common.GT_SEMANTIC_KEY]
        present_stuff = (
            set(np.unique(semantic).tolist()) - set(COCO.thing_class_ids) - {0}
        )
        assert present_stuff == stuff
        np.testing.assert_array_equal(out[common.GT_PANOPTIC_KEY], label)
        np.testing.assert_array_equal(out[common.SEMANTIC_LOSS_WEIGHT_KEY], 1.0)
        # Crowd became void at conversion: no crowd marker left.
        assert not out[common.GT_IS_CROWD].any()
        num_things = int((out[common.GT_THING_ID_CLASS_KEY] >= 0).sum())
        counts[record["image_name"].decode()] = (num_things, len(present_stuff))
    # Thing masks (one per non-crowd instance) and stuff classes per image.
    assert counts == {"000000142238": (14, 3), "000000439180": (26, 4)}


@pytest.fixture(scope="module")
def cityscapes_with_crowd(cityscapes_crowd_records):
    records = tfrecord.read_examples(str(cityscapes_crowd_records / "dummy-*.tfrecord"))
    return records[0]["label"]


def test_cityscapes_sample_targets_exclude_the_crowd(cityscapes_with_crowd):
    label = cityscapes_with_crowd
    out = _targets(label, CITYSCAPES)
    # Five cars (trainId 13); the crowd car keeps class 13 with instance 0.
    _check_thing_masks(out, label, CITYSCAPES, [13] * 5)
    crowd = out[common.GT_IS_CROWD].astype(bool)
    assert crowd.sum() == 6178
    assert np.all(out[common.GT_SEMANTIC_KEY][crowd] == 13)
    assert np.all(out[common.GT_THING_ID_MASK_KEY][crowd] == -1)
    # Stuff present: road (0), sidewalk (2), traffic sign (8) and sky (10).
    semantic = out[common.GT_SEMANTIC_KEY]
    assert set(np.unique(semantic).tolist()) == {0, 2, 8, 10, 13, 255}


def test_small_instances_get_the_small_instance_weight(cityscapes_with_crowd):
    label = cityscapes_with_crowd
    out = _targets(
        label, CITYSCAPES, small_instance_threshold=4096, small_instance_weight=3.0
    )
    weights = out[common.SEMANTIC_LOSS_WEIGHT_KEY]
    # Only car 1 (958 pixels) is below 4096 pixels; the crowd is not an instance.
    np.testing.assert_array_equal(weights == 3.0, label == 13 * 1000 + 1)
    assert (weights == 3.0).sum() == 958
    assert set(np.unique(weights).tolist()) == {1.0, 3.0}


def test_more_things_than_max_thing_id_is_an_error(cityscapes_with_crowd):
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match='image "sample": 5 thing instances .* max_thing_id = 4',
    ):
        _targets(cityscapes_with_crowd, CITYSCAPES, max_thing_id=4)
    out = _targets(cityscapes_with_crowd, CITYSCAPES, max_thing_id=5)
    assert out[common.GT_THING_ID_CLASS_KEY].tolist() == [13] * 5
