"""benchmarks/int8_op_families.py: one op family, fp32 and int8 timed, table and JSON."""

import json
import os
import subprocess
import sys


def test_one_family_is_timed_in_both_precisions(repo_root, tmp_path):
    output = tmp_path / "int8.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks" / "int8_op_families.py"),
            "--families",
            "depthwise_pointwise_relu",
            "--repeats",
            "2",
            "--output_json",
            str(output),
        ],
        cwd=repo_root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.startswith("| op family")
    report = json.loads(output.read_text())
    (row,) = report["rows"]
    assert row["family"] == "depthwise_pointwise_relu"
    for precision in ("fp32", "int8"):
        assert 0 < row[precision]["min_ms"] <= row[precision]["median_ms"]
    assert row["fp32_over_int8"] == row["fp32"]["median_ms"] / row["int8"]["median_ms"]


def test_unknown_family_is_named(repo_root):
    completed = subprocess.run(
        [
            sys.executable,
            str(repo_root / "benchmarks" / "int8_op_families.py"),
            "--families",
            "winograd",
        ],
        cwd=repo_root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert "unknown families ['winograd']" in completed.stderr
