"""Exports and predictions are written whole or not at all, and the
checkpoint failures of ``remax-export`` are one ``error:`` line.

One tiny checkpoint (tests/reliability/conftest.py) is exported once; the
failing exports and predictions then check that the earlier outputs are
left exactly as they were and that no temporary folder stays behind."""

import numpy as np
from PIL import Image
import pytest

from remax_tf import predict
from remax_tf.export.__main__ import main as export_main

CONFIG = "configs/demo/shapes_remax.textproto"
# The exported fixture and export_args are in conftest.py.


def _error_line(capsys, status):
    err = capsys.readouterr().err
    assert status == 1, err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    return line


def _tree(folder):
    """Every path below ``folder`` with its size (folders: -1)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else -1)
        for p in sorted(folder.rglob("*"))
    }


def test_export_of_the_trainers_model_dir(exported):
    assert sorted(p.name for p in exported.iterdir()) == [
        "metadata.json",
        "saved_model",
    ]
    # No temporary sibling left behind.
    assert [p.name for p in exported.parent.iterdir()] == ["export"]


def test_export_of_an_empty_checkpoint_folder(export_args, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [*export_args, "--output_dir", str(tmp_path / "out")]
    args[args.index("--checkpoint") + 1] = str(empty)
    line = _error_line(capsys, export_main(args))
    assert f"--checkpoint {empty}: no checkpoint found" in line and "Fix:" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_export_with_another_configs_checkpoint(
    repo_root, tiny_checkpoint, exported, capsys
):
    """The full-size demo model cannot take the tiny model's checkpoint; the
    earlier export in the output folder is left as it was."""
    before = _tree(exported)
    args = ["--config_file", str(repo_root / CONFIG), "--checkpoint"]
    args += [str(tiny_checkpoint), "--format", "saved_model"]
    args += ["--config_override", "eval_dataset_options.crop_size=[65, 65]"]
    line = _error_line(capsys, export_main([*args, "--output_dir", str(exported)]))
    assert "--checkpoint" in line and "does not fit the model" in line
    assert "export the checkpoint with the --config_file" in line
    assert _tree(exported) == before
    assert [p.name for p in exported.parent.iterdir()] == ["export"]


def test_int8_export_names_the_unset_variable(
    export_args, exported, monkeypatch, capsys
):
    monkeypatch.delenv("REMAX_DATA_DIR", raising=False)
    before = _tree(exported)
    args = [*export_args, "--format", "tflite", "--quantize", "int8"]
    line = _error_line(capsys, export_main([*args, "--output_dir", str(exported)]))
    assert line.startswith("error: REMAX_DATA_DIR is not set")
    assert "train_dataset_options.file_pattern = '${REMAX_DATA_DIR}/" in line
    assert "--quantize none" in line
    assert _tree(exported) == before
    assert [p.name for p in exported.parent.iterdir()] == ["export"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        pixels = rng.integers(0, 256, [40, 50, 3], dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    (folder / "c_broken.png").write_bytes(b"not a png")
    return folder


def _predict_args(exported, images, out, *extra):
    return [
        "--model",
        str(exported),
        "--images",
        str(images),
        "--output_dir",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_failed_prediction_run_writes_nothing(exported, images, tmp_path, capsys):
    out = tmp_path / "predictions"
    args = _predict_args(exported, images, out, "--on_error", "fail")
    line = _error_line(capsys, predict.main(args))
    assert "c_broken.png" in line and "nothing was written" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # three prediction runs
def test_overwrite_replaces_whole_or_not_at_all(exported, images, tmp_path, capsys):
    out = tmp_path / "predictions"
    assert predict.main(_predict_args(exported, images, out)) == 0
    first = _tree(out)
    assert predict.COCO_JSON in first and "a_panoptic.png" in first
    # A failing --overwrite run leaves the earlier predictions as they were.
    failing = _predict_args(exported, images, out, "--overwrite", "--on_error", "fail")
    _error_line(capsys, predict.main(failing))
    assert _tree(out) == first
    # A user's own file next to the predictions survives a successful one.
    (out / "notes.txt").write_text("mine")
    kept = [*_predict_args(exported, images / "a.png", out), "--overwrite"]
    assert predict.main(kept) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "b_panoptic.png" not in names and "notes.txt" in names
    assert [p.name for p in tmp_path.iterdir()] == ["predictions"]
