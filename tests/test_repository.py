"""The repository stands alone: a clone needs nothing beside it.

The development machine keeps a folder of shared material next to the
checkout; a user's clone has none. No tracked file outside docs/ may name it
(the tests read their samples from tests/testdata/).
"""

import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[1]
# Built from pieces so that this file does not name them itself.
_SHARED = "shared"
FORBIDDEN = ("../" + _SHARED, _SHARED + "/data")
# Folders that are never part of a source tree when git is not available.
_UNTRACKED = {".git", ".venv", "build", "dist", "runs", "__pycache__", ".ruff_cache"}


def _tracked_files():
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        return [REPO / name for name in done.stdout.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (an unpacked source archive): every file.
        return [
            path
            for path in REPO.rglob("*")
            if path.is_file()
            and not _UNTRACKED.intersection(path.relative_to(REPO).parts)
            and not path.relative_to(REPO).parts[0].endswith(".egg-info")
        ]


def test_no_file_outside_docs_refers_to_the_shared_folder():
    offenders = []
    for path in _tracked_files():
        relative = path.relative_to(REPO)
        if relative.parts[0] == "docs" or not path.is_file():
            continue
        text = path.read_bytes()
        for needle in FORBIDDEN:
            if needle.encode() in text:
                offenders.append(f"{relative}: {needle}")
    assert not offenders, (
        "files that read or name the development machine's shared folder (a clone "
        "has none; keep test data in tests/testdata/): " + ", ".join(offenders)
    )


def test_test_data_is_in_the_repository():
    testdata = REPO / "tests" / "testdata"
    for path in (
        "README.md",
        "coco_panoptic_sample/LICENSE-panopticapi.txt",
        "coco_panoptic_sample/panoptic_examples.json",
        "coco_panoptic_sample/panoptic_coco_categories.json",
        "cityscapes_dummy/LICENSE-deeplab2.txt",
        "cityscapes_dummy/gtFine/cityscapes_panoptic_dummy_trainId.json",
        "reference/deeplab2_kmax_r50_params.json",
    ):
        assert (testdata / path).is_file(), path
    assert len(list((testdata / "coco_panoptic_sample").glob("*/*.jpg"))) == 2
    assert len(list((testdata / "coco_panoptic_sample").glob("*/*.png"))) == 2
