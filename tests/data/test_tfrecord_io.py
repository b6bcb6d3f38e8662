"""DeepLab2 TFRecord I/O round-trips on the real COCO panoptic sample."""

import json

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.data import tfrecord


@pytest.fixture(scope="module")
def coco_sample(testdata):
    root = testdata / "coco_panoptic_sample"
    annotations = json.loads((root / "panoptic_examples.json").read_text())[
        "annotations"
    ]
    ann = annotations[0]
    name = ann["file_name"][: -len(".png")]
    image_bytes = (root / "input_images" / f"{name}.jpg").read_bytes()
    rgb = np.asarray(
        Image.open(root / "panoptic_examples" / ann["file_name"]), dtype=np.int64
    )
    segment_ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
    # Any int32 map exercises the byte layout; use the segment ids themselves.
    return name, image_bytes, segment_ids.astype(np.int32)


def test_example_has_the_deeplab2_keys_and_types(coco_sample):
    name, image_bytes, label = coco_sample
    h, w = label.shape
    example = tfrecord.make_example(image_bytes, "jpeg", name, h, w, label)
    f = example.features.feature
    assert f[common.KEY_IMAGE_FILENAME].bytes_list.value[0] == name.encode()
    assert f[common.KEY_IMAGE_FORMAT].bytes_list.value[0] == b"jpeg"
    assert f[common.KEY_IMAGE_HEIGHT].int64_list.value[0] == h
    assert f[common.KEY_IMAGE_WIDTH].int64_list.value[0] == w
    assert f[common.KEY_IMAGE_CHANNELS].int64_list.value[0] == 3
    assert f[common.KEY_LABEL_FORMAT].bytes_list.value[0] == b"raw"
    raw = f[common.KEY_ENCODED_LABEL].bytes_list.value[0]
    assert len(raw) == h * w * 4
    np.testing.assert_array_equal(np.frombuffer(raw, "<i4").reshape(h, w), label)


def test_round_trip_through_a_shard(coco_sample, tmp_path):
    name, image_bytes, label = coco_sample
    h, w = label.shape
    path = tfrecord.shard_paths(str(tmp_path), "val", 1)[0]
    assert path.endswith("val-00000-of-00001.tfrecord")
    n = tfrecord.write_shard(
        path, [tfrecord.make_example(image_bytes, "jpeg", name, h, w, label)]
    )
    assert n == 1
    (record,) = tfrecord.read_examples(str(tmp_path / "val-*.tfrecord"))
    np.testing.assert_array_equal(record["label"], label)
    np.testing.assert_array_equal(
        record["image"], tf.io.decode_jpeg(image_bytes).numpy()
    )
    assert record["image_name"] == name.encode()
    assert (record["height"], record["width"]) == (h, w)


def test_label_shape_mismatch_is_rejected(coco_sample):
    name, image_bytes, label = coco_sample
    with pytest.raises(ValueError, match=name):
        tfrecord.make_example(
            image_bytes, "jpeg", name, label.shape[0] + 1, label.shape[1], label
        )


def test_unlabeled_examples_parse_without_label(coco_sample):
    name, image_bytes, label = coco_sample
    example = tfrecord.make_example(image_bytes, "jpeg", name, *label.shape, None)
    parsed = tfrecord.parse_example(example.SerializeToString(), decode_label=False)
    assert "label" not in parsed and parsed["image"].shape[:2] == label.shape
