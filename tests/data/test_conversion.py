"""Converters: exact round trip of the real samples, resumable shards, and
bad data reported by name."""

import io
import json
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from remax_tf.data import build_ade20k_data
from remax_tf.data import build_coco_data
from remax_tf.data import conversion
from remax_tf.data import datasets
from remax_tf.data import tfrecord

COCO = datasets.get_dataset_descriptor("coco_panoptic")
CITYSCAPES = datasets.get_dataset_descriptor("cityscapes_panoptic")


def _png_ids(path):
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def _check_round_trip(record, png_path, segments, category_to_semantic, descriptor):
    """Per pixel: the JSON segment's class (crowd, void -> ignore), and one
    instance id per segment, distinct between same-class things."""
    ids = _png_ids(png_path)
    label = record["label"]
    divisor, ignore = descriptor.panoptic_label_divisor, descriptor.ignore_label
    assert label.shape == ids.shape == record["image"].shape[:2]
    semantic, instance = label // divisor, label % divisor
    listed = {s["id"] for s in segments}
    void = ~np.isin(ids, list(listed))
    assert np.all(label[void] == ignore * divisor)
    seen_things = set()
    for s in segments:
        pixels = ids == s["id"]
        assert pixels.sum() == s["area"]
        sem = category_to_semantic[s["category_id"]]
        if s["iscrowd"]:
            assert np.all(label[pixels] == ignore * divisor), s
            continue
        assert np.all(semantic[pixels] == sem), s
        values = np.unique(instance[pixels])
        assert len(values) == 1, s
        if sem in descriptor.class_has_instances_list:
            assert values[0] >= 1
            assert (sem, values[0]) not in seen_things
            seen_things.add((sem, values[0]))
        else:
            assert values[0] == 0
    return seen_things


def test_coco_round_trip_is_exact(coco_records, coco_sample):
    records = tfrecord.read_examples(str(coco_records / "val-*.tfrecord"))
    shards = sorted(os.listdir(coco_records))
    # DeepLab2's 1000 shards are capped at the number of images.
    assert shards == ["val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]
    data = json.loads((coco_sample / "panoptic_examples.json").read_text())
    by_name = {os.path.splitext(a["file_name"])[0]: a for a in data["annotations"]}
    # COCO category ids -> 1..133 in category order.
    mapping = {c["id"]: i + 1 for i, c in enumerate(data["categories"])}
    assert len(records) == 2
    things = 0
    for record in records:
        name = record["image_name"].decode()
        annotation = by_name[name]
        jpg = coco_sample / "input_images" / f"{name}.jpg"
        things += len(
            _check_round_trip(
                record,
                coco_sample / "panoptic_examples" / annotation["file_name"],
                annotation["segments_info"],
                mapping,
                COCO,
            )
        )
        assert record["image"].shape == np.asarray(Image.open(jpg)).shape
    expected = sum(
        1
        for a in data["annotations"]
        for s in a["segments_info"]
        if not s["iscrowd"] and mapping[s["category_id"]] in COCO.thing_class_ids
    )
    # 14 in 000000142238 (13 people, a ball), 26 in 000000439180.
    assert things == expected == 40


def test_coco_encoded_image_is_the_original_jpeg(coco_records, coco_sample):

    for raw in tf.data.TFRecordDataset(
        sorted(str(p) for p in coco_records.glob("val-*.tfrecord"))
    ):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature
        name = feature["image/filename"].bytes_list.value[0].decode()
        original = (coco_sample / "input_images" / f"{name}.jpg").read_bytes()
        assert feature["image/encoded"].bytes_list.value[0] == original
        assert feature["image/format"].bytes_list.value[0] == b"jpeg"
        assert feature["image/segmentation/class/format"].bytes_list.value[0] == b"raw"


def test_cityscapes_round_trip_is_exact(cityscapes_records, cityscapes_sample):
    (record,) = tfrecord.read_examples(str(cityscapes_records / "dummy-*.tfrecord"))
    assert record["image_name"] == b"dummy_000000_000000"
    data = json.loads(
        (
            cityscapes_sample / "gtFine" / "cityscapes_panoptic_dummy_trainId.json"
        ).read_text()
    )
    (annotation,) = data["annotations"]
    things = _check_round_trip(
        record,
        cityscapes_sample / "gtFine" / "cityscapes_panoptic_dummy_trainId"
        / annotation["file_name"],
        annotation["segments_info"],
        {i: i for i in range(19)},
        CITYSCAPES,
    )  # fmt: skip
    # Five non-crowd cars (trainId 13) numbered 1..5; the crowd car is void.
    assert things == {(13, i) for i in range(1, 6)}
    assert np.sum(record["label"] == 255 * 1000) >= 6178


def test_crowd_can_be_kept_as_deeplab2_crowd_marker(
    cityscapes_sample, cityscapes_crowd_records
):
    (record,) = tfrecord.read_examples(
        str(cityscapes_crowd_records / "dummy-*.tfrecord")
    )
    ids = _png_ids(
        cityscapes_sample / "gtFine" / "cityscapes_panoptic_dummy_trainId"
        / "dummy_000000_000000_gtFine_panoptic.png"
    )  # fmt: skip
    crowd = ids == 26
    assert crowd.sum() == 6178
    assert np.all(record["label"][crowd] == 13 * 1000)


def test_rerun_keeps_complete_shards_and_rewrites_missing_ones(coco_tree, tmp_path):
    first = build_coco_data.convert(
        str(coco_tree), str(tmp_path), splits=["val"], progress=False
    )["val"]
    assert (first.shards_written, first.shards_reused) == (2, 0)
    contents = {p: open(p, "rb").read() for p in first.shard_paths}
    again = build_coco_data.convert(
        str(coco_tree), str(tmp_path), splits=["val"], progress=False
    )["val"]
    assert (again.shards_written, again.shards_reused, again.written) == (0, 2, 0)
    os.remove(first.shard_paths[1])
    third = build_coco_data.convert(
        str(coco_tree), str(tmp_path), splits=["val"], progress=False
    )["val"]
    assert (third.shards_written, third.shards_reused) == (1, 1)
    assert {p: open(p, "rb").read() for p in first.shard_paths} == contents


def test_interrupted_shard_leaves_no_file(coco_tree, tmp_path, monkeypatch):
    real = conversion.build_example
    calls = []

    def failing(item, spec):
        calls.append(item.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a shard
        return real(item, spec)

    monkeypatch.setattr(conversion, "build_example", failing)
    with pytest.raises(KeyboardInterrupt):
        build_coco_data.convert(
            str(coco_tree), str(tmp_path), splits=["val"], num_shards=1, progress=False
        )
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Bad data.

SPEC = conversion.LabelSpec(
    dataset="toy",
    label_divisor=4,
    ignore_label=0,
    thing_ids=frozenset({1}),
    category_map={10: 1, 20: 2},
)


def _segment(i, category, area, crowd=0):
    return {"id": i, "category_id": category, "area": area, "iscrowd": crowd}


def test_label_from_segments_numbers_instances_per_class():
    ids = np.array([[0, 5, 5], [7, 7, 9]])
    label = conversion.panoptic_label_from_segments(
        ids,
        [_segment(5, 10, 2), _segment(7, 10, 2), _segment(9, 20, 1)],
        SPEC,
        "toy.png",
    )
    np.testing.assert_array_equal(label, [[0, 5, 5], [6, 6, 8]])


@pytest.mark.parametrize(
    "segments, match",
    [
        ([_segment(5, 99, 2)], r"toy\.png: segment 5 has category_id 99, which is not"),
        ([], r"toy\.png: segment id\(s\) \[5\] appear in the PNG but not in the JSON"),
        (
            [_segment(5, 10, 3)],
            r"segment 5 \(category 10\) declares area 3 but the PNG",
        ),
        ([_segment(5, 20, 2, crowd=1)], r"stuff class 2 .* has iscrowd=1"),
    ],
)
def test_bad_segments_are_named(segments, match):
    with pytest.raises(conversion.ConversionError, match=match):
        conversion.panoptic_label_from_segments(
            np.array([[5, 5]]), segments, SPEC, "toy.png"
        )


def test_instance_id_reaching_the_divisor_is_an_error():
    ids = np.arange(1, 5).reshape(1, 4)
    with pytest.raises(
        conversion.ConversionError,
        match=r"toy\.png: class 1 .* instance id 4 >= label divisor 4",
    ):
        conversion.panoptic_label_from_segments(
            ids, [_segment(i, 10, 1) for i in range(1, 5)], SPEC, "toy.png"
        )


def _write_png(path, array):
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_corrupt_image_and_size_mismatch_are_named(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(
        conversion.ConversionError, match=r"corrupt image .*corrupt\.jpg"
    ):
        conversion.encode_image(str(corrupt))
    _write_png(tmp_path / "image.png", np.zeros((4, 6, 3)))
    _write_png(tmp_path / "label.png", np.zeros((4, 5, 3)))
    item = conversion.ImageItem(
        name="image",
        image_path=str(tmp_path / "image.png"),
        label_path=str(tmp_path / "label.png"),
        segments=(),
    )
    with pytest.raises(
        conversion.ConversionError,
        match=r"image .*image\.png is 4x6 but its label .*label\.png is 4x5",
    ):
        conversion.build_example(item, SPEC)


def test_grayscale_image_is_converted_to_rgb(tmp_path):
    Image.fromarray(np.full((3, 4), 77, np.uint8)).save(tmp_path / "g.png")
    data, image_format, height, width = conversion.encode_image(str(tmp_path / "g.png"))
    assert (image_format, height, width) == ("png", 3, 4)
    assert Image.open(io.BytesIO(data)).mode == "RGB"


def test_on_error_skip_counts_and_lists_bad_images(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    _write_png(good, np.zeros((2, 2, 3)))
    bad.write_bytes(b"broken")
    items = [
        conversion.ImageItem(name="bad", image_path=str(bad)),
        conversion.ImageItem(name="good", image_path=str(good)),
        conversion.ImageItem(
            name="lost", image_path=str(good), problem="no annotation"
        ),
    ]
    out = tmp_path / "out"
    with pytest.raises(conversion.ConversionError, match="corrupt image"):
        conversion.convert_split(items, SPEC, str(out), "val", 1, progress=False)
    summary = conversion.convert_split(
        items, SPEC, str(out), "val", 1, on_error="skip", progress=False
    )
    assert (summary.written, [n for n, _ in summary.skipped]) == (1, ["bad", "lost"])
    assert "2 skipped" in summary.describe()
    listed = (out / "val-skipped.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in listed] == ["bad", "lost"]

    shards = [str(p) for p in out.glob("val-*.tfrecord")]
    assert sum(1 for _ in tf.data.TFRecordDataset(shards)) == 1


def test_image_without_annotation_is_reported(coco_tree, tmp_path):
    extra = coco_tree.parent / "coco_extra"
    (extra / "val2017").mkdir(parents=True)
    (extra / "annotations").symlink_to(coco_tree / "annotations")
    for jpg in (coco_tree / "val2017").iterdir():
        (extra / "val2017" / jpg.name).symlink_to(jpg)
    _write_png(extra / "val2017" / "000000000001.jpg", np.zeros((2, 2, 3)))
    with pytest.raises(
        conversion.ConversionError, match=r"000000000001\.jpg has no annotation"
    ):
        build_coco_data.convert(
            str(extra), str(tmp_path), splits=["val"], progress=False
        )


def test_ade20k_categories_shift_by_one_and_255_is_void(tmp_path):

    ade = datasets.get_dataset_descriptor("ade20k_panoptic")
    thing, stuff = ade.thing_class_ids[0], ade.stuff_class_ids[0]
    (tmp_path / "images" / "validation").mkdir(parents=True)
    (tmp_path / "ade20k_panoptic_val").mkdir()
    ids = np.array([[1, 1, 2, 2], [3, 3, 0, 4]])
    rgb = np.stack([ids, np.zeros_like(ids), np.zeros_like(ids)], -1)
    _write_png(tmp_path / "ade20k_panoptic_val" / "ADE_val_1.png", rgb)
    Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(
        tmp_path / "images" / "validation" / "ADE_val_1.jpg"
    )
    segments = [
        _segment(1, stuff - 1, 2),
        _segment(2, thing - 1, 2),
        _segment(3, thing - 1, 2),
        _segment(4, build_ade20k_data.ADE20K_JSON_VOID_CATEGORY, 1),
    ]
    annotation = {"image_id": "ADE_val_1", "file_name": "ADE_val_1.png"}
    annotation["segments_info"] = segments
    (tmp_path / "ade20k_panoptic_val.json").write_text(
        json.dumps({"annotations": [annotation]})
    )
    out = tmp_path / "out"
    build_ade20k_data.convert(str(tmp_path), str(out), splits=["val"], progress=False)
    (record,) = tfrecord.read_examples(str(out / "val-*.tfrecord"))
    d = ade.panoptic_label_divisor
    np.testing.assert_array_equal(
        record["label"],
        [
            [stuff * d, stuff * d, thing * d + 1, thing * d + 1],
            [thing * d + 2] * 2 + [0, 0],
        ],
    )
