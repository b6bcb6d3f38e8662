"""Shared pytest setup: quiet TensorFlow, the real-data samples of tests/testdata."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The COCO panoptic and Cityscapes samples and the DeepLab2 reference counts,
# with their licences (tests/testdata/README.md).
TESTDATA = REPO_ROOT / "tests" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> pathlib.Path:
    """tests/testdata: ``coco_panoptic_sample/``, ``cityscapes_dummy/``,
    ``reference/``."""
    return TESTDATA


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT
