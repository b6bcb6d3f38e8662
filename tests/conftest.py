"""Shared pytest setup: quiet TensorFlow, the shared real-data samples."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _shared_data_dir() -> pathlib.Path:
    env = os.environ.get("REMAX_SHARED_DATA")
    if env:
        return pathlib.Path(env)
    return REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The real samples of ../shared/data (COCO panoptic, Cityscapes)."""
    path = _shared_data_dir()
    if not (path / "coco_panoptic_sample").is_dir():
        pytest.fail(
            f"shared sample data not found at {path}; set "
            "REMAX_SHARED_DATA to the shared/data directory."
        )
    return path


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT
