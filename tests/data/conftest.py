"""Fixtures of the data tests: the real samples laid out as the converters
expect them, and their converted TFRecords (built once per session)."""

import json
import os
import pathlib

import pytest


def make_coco_tree(sample: pathlib.Path, root: pathlib.Path, split: str = "val"):
    """COCO layout (R/{split}2017, R/annotations/...) from the sample,
    whose own layout is input_images/, panoptic_examples.json, ..."""
    images = root / f"{split}2017"
    labels = root / "annotations" / f"panoptic_{split}2017"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for jpg in sorted((sample / "input_images").glob("*.jpg")):
        os.symlink(jpg, images / jpg.name)
    for png in sorted((sample / "panoptic_examples").glob("*.png")):
        os.symlink(png, labels / png.name)
    data = json.loads((sample / "panoptic_examples.json").read_text())
    (root / "annotations" / f"panoptic_{split}2017.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="session")
def coco_sample(testdata) -> pathlib.Path:
    return testdata / "coco_panoptic_sample"


@pytest.fixture(scope="session")
def cityscapes_sample(testdata) -> pathlib.Path:
    return testdata / "cityscapes_dummy"


@pytest.fixture(scope="session")
def coco_tree(coco_sample, tmp_path_factory) -> pathlib.Path:
    return make_coco_tree(coco_sample, tmp_path_factory.mktemp("coco_root"))


@pytest.fixture(scope="session")
def coco_records(coco_tree, tmp_path_factory) -> pathlib.Path:
    """COCO sample converted (val split, default shard count -> 2 shards)."""
    from remax_tf.data import build_coco_data

    out = tmp_path_factory.mktemp("coco_tfrecord")
    build_coco_data.convert(str(coco_tree), str(out), splits=["val"], progress=False)
    return out


@pytest.fixture(scope="session")
def cityscapes_records(cityscapes_sample, tmp_path_factory) -> pathlib.Path:
    from remax_tf.data import build_cityscapes_data

    out = tmp_path_factory.mktemp("cityscapes_tfrecord")
    build_cityscapes_data.convert(
        str(cityscapes_sample), str(out), splits=["dummy"], progress=False
    )
    return out
