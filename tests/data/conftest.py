"""Fixtures of the data tests: the real samples laid out as the converters
expect them, and their converted TFRecords (built once per session)."""

import json
import os
import pathlib

import pytest

from remax_tf.data import build_cityscapes_data
from remax_tf.data import build_coco_data


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
    out = tmp_path_factory.mktemp("coco_tfrecord")
    build_coco_data.convert(str(coco_tree), str(out), splits=["val"], progress=False)
    return out


def _convert_cityscapes(sample, out, treat_crowd_as_ignore):
    build_cityscapes_data.convert(
        str(sample),
        str(out),
        splits=["dummy"],
        treat_crowd_as_ignore=treat_crowd_as_ignore,
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def cityscapes_records(cityscapes_sample, tmp_path_factory) -> pathlib.Path:
    """The Cityscapes sample converted, crowd void (DeepLab2's default)."""
    out = tmp_path_factory.mktemp("cityscapes_tfrecord")
    return _convert_cityscapes(cityscapes_sample, out, treat_crowd_as_ignore=True)


@pytest.fixture(scope="session")
def cityscapes_crowd_records(cityscapes_sample, tmp_path_factory) -> pathlib.Path:
    """The Cityscapes sample converted with crowd kept (class, instance 0)."""
    out = tmp_path_factory.mktemp("cityscapes_crowd_tfrecord")
    return _convert_cityscapes(cityscapes_sample, out, treat_crowd_as_ignore=False)
