"""Every command-line entry point turns an expected failure into one
``error: ...`` line naming the culprit and the fix, exit status 1, no
traceback (``--debug`` / ``REMAX_TF_DEBUG=1`` show it), and leaves nothing
behind in the output folder."""

import os
import subprocess
import sys

import pytest

from remax_tf import convert_deeplab2
from remax_tf import demo
from remax_tf import predict
from remax_tf.data import shapes
from remax_tf.evaluation import coco_panoptic
from remax_tf.export.__main__ import main as export_main
from remax_tf.training import batch_norm_stats
from remax_tf.training import pretrain_backbone

CONFIG = "configs/demo/shapes_remax.textproto"


@pytest.fixture
def blocked(tmp_path):
    """An output path below a regular file: ``<tmp>/file.txt/out``."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    return blocker, blocker / "out"


def _assert_error(capsys, status, *fragments):
    err = capsys.readouterr().err
    assert status == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    return lines[0]


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def _run_blocked(main, argv, capsys, blocker, out):
    status = main(argv)
    _assert_error(capsys, status, out, f"the regular file {blocker}", "Fix:")
    assert blocker.read_text() == "not a folder"
    assert _entries(blocker.parent) == ["file.txt"]


def test_export_output_below_a_file(repo_root, blocked, capsys):
    blocker, out = blocked
    argv = ["--config_file", str(repo_root / CONFIG), "--checkpoint", str(out)]
    _run_blocked(export_main, argv + ["--output_dir", str(out)], capsys, *blocked)


def test_predict_output_below_a_file(blocked, capsys):
    blocker, out = blocked
    argv = ["--model", str(blocker.parent), "--images", str(blocker)]
    _run_blocked(predict.main, argv + ["--output_dir", str(out)], capsys, *blocked)


def test_deeplab2_converter_output_below_a_file(repo_root, blocked, capsys):
    blocker, out = blocked
    argv = [
        "--config_file",
        str(repo_root / "configs/demo/shapes_kmax.textproto"),
        "--deeplab2_checkpoint",
        str(blocker),
        "--output_dir",
        str(out),
    ]
    _run_blocked(convert_deeplab2.main, argv, capsys, *blocked)


@pytest.mark.parametrize(
    "main, extra",
    [
        (shapes.main, []),
        (pretrain_backbone.main, []),
        (demo.main, []),
        (
            batch_norm_stats.main,
            ["--config_file", CONFIG, "--checkpoint", "unused"],
        ),
    ],
    ids=["shapes", "pretrain_backbone", "demo", "batch_norm_stats"],
)
def test_other_commands_output_below_a_file(main, extra, blocked, capsys):
    _run_blocked(main, [*extra, "--output_dir", str(blocked[1])], capsys, *blocked)


def test_evaluate_output_json_below_a_file(blocked, capsys):
    blocker, out = blocked
    json_path = out / "pq.json"
    argv = ["--gt_json", "gt.json", "--pred_json", "pred.json"]
    status = coco_panoptic.main(argv + ["--output_json", str(json_path)])
    _assert_error(capsys, status, "--output_json", f"the regular file {blocker}")


def test_evaluate_missing_input_is_an_error_line(tmp_path, capsys):
    status = coco_panoptic.main(
        ["--gt_json", str(tmp_path / "gt.json"), "--pred_json", "pred.json"]
    )
    _assert_error(capsys, status, "gt.json")


def _run(module, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_converter_subprocess_exit_status_and_debug(blocked):
    """An absl converter: exit status 1 and one line; ``--debug`` (not an
    absl flag) and REMAX_TF_DEBUG=1 add the traceback."""
    blocker, out = blocked
    args = ["--coco_root", str(blocker.parent), "--output_dir", str(out)]
    plain = _run("remax_tf.data.build_coco_data", *args)
    assert plain.returncode == 1, plain.stderr
    assert "Traceback" not in plain.stderr
    assert f"error: --output_dir {out} lies below the regular file" in plain.stderr
    for debug in (
        _run("remax_tf.data.build_coco_data", *args, "--debug"),
        _run("remax_tf.data.build_coco_data", *args, env={"REMAX_TF_DEBUG": "1"}),
    ):
        assert debug.returncode == 1
        assert "Traceback" in debug.stderr and "OutputPathError" in debug.stderr
        assert "error: --output_dir" in debug.stderr
    assert _entries(blocker.parent) == ["file.txt"]


def test_export_subprocess_exit_status_and_debug(repo_root, blocked):
    blocker, out = blocked
    args = [
        "--config_file",
        str(repo_root / CONFIG),
        "--checkpoint",
        str(blocker.parent),
        "--output_dir",
        str(out),
    ]
    plain = _run("remax_tf.export", *args)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().startswith(f"error: --output_dir {out}")
    debug = _run("remax_tf.export", *args, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
