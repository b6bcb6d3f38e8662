"""build_custom_data: a COCO-panoptic dataset with its own categories becomes
TFRecords plus a descriptor a config can name by path."""

import json

from absl import flags
from google.protobuf import text_format
import numpy as np
from PIL import Image
import pytest

from remax_tf import common
from remax_tf.data import build_custom_data
from remax_tf.data import build_dataset
from remax_tf.data import conversion
from remax_tf.data import datasets
from remax_tf.data import tfrecord
from remax_tf.protos import dataset_pb2

# Stuff listed first: semantic ids follow the categories' order, not their ids.
CATEGORIES = [
    {"id": 50, "name": "floor", "isthing": 0, "color": [90, 90, 90]},
    {"id": 7, "name": "widget", "isthing": 1},
]
SIZE = (33, 40)


def _write_dataset(root, num_widgets=(2, 3), categories=CATEGORIES):
    """Images a.jpg, b.png; PNGs named seg_<name>.png, found via 'images'."""
    (root / "images").mkdir()
    (root / "pngs").mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id, (name, ext, widgets) in enumerate(
        [("a", ".jpg", num_widgets[0]), ("b", ".png", num_widgets[1])]
    ):
        ids = np.full(SIZE, 900, np.int64)  # floor
        ids[:4] = 0  # unlabeled rows -> void
        segments = [{"id": 900, "category_id": 50, "iscrowd": 0}]
        for k in range(widgets):
            ids[5 + 3 * k : 7 + 3 * k, 2:9] = 1000 + k
            segments.append({"id": 1000 + k, "category_id": 7, "iscrowd": 0})
        for s in segments:
            s["area"] = int((ids == s["id"]).sum())
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1)
        Image.fromarray(rgb.astype(np.uint8)).save(root / "pngs" / f"seg_{name}.png")
        pixels = rng.integers(0, 255, SIZE + (3,), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{name}{ext}")
        images.append({"id": image_id, "file_name": f"{name}{ext}"})
        annotations.append(
            {
                "image_id": image_id,
                "file_name": f"seg_{name}.png",
                "segments_info": segments,
            }
        )
    path = root / "panoptic.json"
    path.write_text(
        json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}
        )
    )
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    json_path = _write_dataset(root)
    out = root / "out"
    summary, descriptor_path = build_custom_data.convert(
        str(root / "images"),
        str(json_path),
        str(root / "pngs"),
        str(out),
        dataset_name="widgets",
        split="train",
        progress=False,
    )
    return root, out, summary, descriptor_path


def test_descriptor_assigns_ids_in_category_order(converted):
    _, out, summary, descriptor_path = converted
    assert summary.written == 2
    assert descriptor_path == str(out / "descriptor.json")
    descriptor = datasets.get_dataset_descriptor(descriptor_path)
    assert descriptor.name == "widgets"
    assert (descriptor.num_classes, descriptor.ignore_label) == (3, 0)
    assert descriptor.class_names == ("void", "floor", "widget")
    assert descriptor.thing_class_ids == (2,) and descriptor.stuff_class_ids == (1,)
    assert descriptor.original_category_ids == (-1, 50, 7)
    assert descriptor.panoptic_label_divisor == 256
    assert descriptor.class_colors[1] == (90, 90, 90)
    assert descriptor.splits_to_sizes == {"train": 2}


def test_labels_use_the_new_ids(converted):
    _, out, _, _ = converted
    records = tfrecord.read_examples(str(out / "train-*.tfrecord"))
    assert [r["image_name"] for r in records] == [b"a", b"b"]
    for record, widgets in zip(records, (2, 3)):
        label = record["label"]
        assert np.all(label[:4] == 0)
        values = set(np.unique(label[4:]).tolist())
        assert values == {1 * 256} | {2 * 256 + k for k in range(1, widgets + 1)}


def test_a_config_can_point_at_the_descriptor(converted):

    _, out, _, descriptor_path = converted
    options = text_format.Parse(
        f'dataset: "{descriptor_path}" file_pattern: "{out}/train-*.tfrecord" '
        "batch_size: 2 crop_size: 33 crop_size: 33 seed: 1 deterministic: true",
        dataset_pb2.DatasetOptions(),
    )
    batch = next(iter(build_dataset(options, is_training=True)))
    assert batch[common.IMAGE].shape == (2, 33, 33, 3)
    classes = batch[common.GT_THING_ID_CLASS_KEY].numpy()
    # Each sample is image a (2 widgets) or b (3 widgets), partly cropped.
    assert set((classes == 2).sum(axis=1).tolist()) <= {2, 3}
    assert np.all(classes[classes != 2] == -1)


def test_second_split_via_the_command_line_extends_the_descriptor(converted):
    root, out, _, descriptor_path = converted
    argv = [
        "build_custom_data",
        f"--image_dir={root / 'images'}",
        f"--panoptic_json={root / 'panoptic.json'}",
        f"--panoptic_dir={root / 'pngs'}",
        f"--output_dir={out}",
        "--dataset_name=widgets",
        "--split=val",
        "--noprogress",
    ]
    flags.FLAGS(argv)
    try:
        build_custom_data.main([])
    finally:
        flags.FLAGS.unparse_flags()
    descriptor = datasets.load_descriptor_json(descriptor_path)
    assert descriptor.splits_to_sizes == {"train": 2, "val": 2}
    assert (out / "val-00000-of-00002.tfrecord").exists()


def test_other_categories_in_the_same_output_dir_are_refused(converted, tmp_path):
    root, out, _, _ = converted
    other = _write_dataset(
        tmp_path, categories=[dict(CATEGORIES[1]), dict(CATEGORIES[0])]
    )
    with pytest.raises(
        conversion.ConversionError, match="written for other categories"
    ):
        build_custom_data.convert(
            str(tmp_path / "images"), str(other), str(tmp_path / "pngs"), str(out),
            dataset_name="widgets", split="test", progress=False,
        )  # fmt: skip


def test_label_divisor_grows_with_the_instance_count():
    assert build_custom_data.choose_label_divisor(3) == 256
    assert build_custom_data.choose_label_divisor(127) == 256
    # Copy-paste needs instance ids below divisor / 2.
    assert build_custom_data.choose_label_divisor(128) == 512
    assert build_custom_data.choose_label_divisor(700) == 2048


def test_many_instances_pick_a_larger_divisor(tmp_path):
    json_path = _write_dataset(tmp_path, num_widgets=(2, 9))
    data = json.loads(json_path.read_text())
    # Pretend image b holds 300 widgets: only the JSON counts are scanned.
    extra = [{"id": 5000 + k, "category_id": 7, "iscrowd": 0} for k in range(291)]
    data["annotations"][1]["segments_info"] += extra
    json_path.write_text(json.dumps(data))
    annotations = conversion.PanopticAnnotations(str(json_path))
    assert build_custom_data.max_instances_per_class(annotations, CATEGORIES) == 300
    assert build_custom_data.choose_label_divisor(300) == 1024
