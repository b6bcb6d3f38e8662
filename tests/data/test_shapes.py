"""shapes_panoptic: labels are well formed and generation is deterministic."""

import glob
import os

import numpy as np
import pytest

from remax_tf.data import datasets
from remax_tf.data import shapes
from remax_tf.data import tfrecord

DESCRIPTOR = datasets.get_dataset_descriptor("shapes_panoptic")
DIVISOR = DESCRIPTOR.panoptic_label_divisor


# The one generation request of these tests (two train shards, one val).
REQUEST = dict(num_train=24, num_val=8, seed=3, images_per_shard=12, num_workers=1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shapes"))
    return out, shapes.generate(out, **REQUEST)


@pytest.fixture(scope="module")
def records(generated):
    out, _ = generated
    return tfrecord.read_examples(os.path.join(out, "train-*.tfrecord"))


def test_shards_follow_deeplab2_naming(generated):
    out, paths = generated
    assert [os.path.basename(p) for p in paths["train"]] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    assert [os.path.basename(p) for p in paths["val"]] == [
        "val-00000-of-00001.tfrecord"
    ]
    assert not [f for f in os.listdir(out) if f.endswith(".incomplete")]


def test_records_decode_to_images_and_labels(records):
    assert len(records) == 24
    for r in records:
        assert r["image"].shape == (129, 129, 3) and r["image"].dtype == np.uint8
        assert r["label"].shape == (129, 129)
        assert (r["height"], r["width"]) == (129, 129)


def test_labels_use_the_divisor_encoding_and_stay_in_range(records):
    for r in records:
        semantic, instance = r["label"] // DIVISOR, r["label"] % DIVISOR
        assert semantic.min() >= 0 and semantic.max() < DESCRIPTOR.num_classes
        assert instance.max() < DIVISOR
        # Stuff and void carry instance 0.
        for cls in DESCRIPTOR.stuff_class_ids + (DESCRIPTOR.ignore_label,):
            assert not np.any(instance[semantic == cls])


def test_instance_ids_are_contiguous_per_class(records):
    for r in records:
        semantic, instance = r["label"] // DIVISOR, r["label"] % DIVISOR
        for cls in DESCRIPTOR.thing_class_ids:
            ids = np.unique(instance[(semantic == cls) & (instance > 0)])
            np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))


def test_dataset_has_things_stuff_crowd_void_and_varied_sizes(records):
    stats = shapes.label_statistics([r["label"] for r in records])
    assert all(n > 0 for n in stats["instances"].values()), stats
    assert stats["images_with_crowd"] > 0
    assert stats["pixel_fraction"]["void"] > 0
    assert all(
        stats["pixel_fraction"][n] > 0.05 for n in ("ground", "water", "foliage")
    )
    area = stats["instance_area_px"]
    assert area["max"] > 20 * area["min"]


def test_same_class_instances_touch_somewhere(records):
    # Two different instances of one class 4-adjacent: the task needs
    # instance separation, not only semantics.
    touching = 0
    for r in records:
        label = r["label"]
        thing = (label % DIVISOR) > 0
        right = thing[:, 1:] & thing[:, :-1] & (label[:, 1:] != label[:, :-1])
        same_class = (label[:, 1:] // DIVISOR) == (label[:, :-1] // DIVISOR)
        touching += int(np.any(right & same_class))
    assert touching > 0


def test_generation_is_deterministic_and_resumes(generated, tmp_path):
    out, paths = generated
    again = shapes.generate(str(tmp_path), **REQUEST)
    for a, b in zip(paths["train"], again["train"]):
        assert open(a, "rb").read() == open(b, "rb").read()
    # An existing (complete) shard is kept, not rewritten.
    first = again["train"][0]
    mtime = os.path.getmtime(first)
    shapes.generate(str(tmp_path), **REQUEST)
    assert os.path.getmtime(first) == mtime


def test_a_different_request_replaces_the_shards_of_the_previous_one(tmp_path):
    def train_shards():
        return sorted(os.path.basename(p) for p in glob.glob(f"{tmp_path}/train-*"))

    first = shapes.generate(
        str(tmp_path), num_train=8, num_val=4, images_per_shard=4, num_workers=1
    )
    assert train_shards() == [os.path.basename(p) for p in first["train"]]
    # Fewer images, no val split: one train shard, nothing of the first run.
    second = shapes.generate(str(tmp_path), num_train=4, num_val=0, num_workers=1)
    assert train_shards() == ["train-00000-of-00001.tfrecord"]
    assert not glob.glob(f"{tmp_path}/val-*")
    assert shapes.read_generation(str(tmp_path))["num_train"] == 4
    seed0_bytes = open(second["train"][0], "rb").read()
    # Same layout, another seed: the shard is rewritten, not resumed.
    shapes.generate(str(tmp_path), num_train=4, num_val=0, seed=5, num_workers=1)
    assert open(second["train"][0], "rb").read() != seed0_bytes
    assert shapes.read_generation(str(tmp_path))["seed"] == 5


def test_render_depends_on_seed():
    a, _ = shapes.render(shapes.image_rng(0, "train", 0))
    b, _ = shapes.render(shapes.image_rng(1, "train", 0))
    c, _ = shapes.render(shapes.image_rng(0, "train", 0))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)
