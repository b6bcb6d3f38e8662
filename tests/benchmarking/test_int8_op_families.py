"""benchmarks/int8_op_families.py: one op family, fp32 and int8 timed, table and JSON."""

import json


def test_one_family_is_timed_in_both_precisions(run_benchmark, tmp_path):
    output = tmp_path / "int8.json"
    completed = run_benchmark(
        "int8_op_families.py",
        "--families",
        "depthwise_pointwise_relu",
        "--repeats",
        "2",
        "--output_json",
        output,
    )
    assert completed.stdout.startswith("| op family")
    report = json.loads(output.read_text())
    (row,) = report["rows"]
    assert row["family"] == "depthwise_pointwise_relu"
    for precision in ("fp32", "int8"):
        assert 0 < row[precision]["min_ms"] <= row[precision]["median_ms"]
    assert row["fp32_over_int8"] == row["fp32"]["median_ms"] / row["int8"]["median_ms"]


def test_unknown_family_is_named(run_benchmark):
    completed = run_benchmark(
        "int8_op_families.py", "--families", "winograd", check=False
    )
    assert completed.returncode == 2
    assert "unknown families ['winograd']" in completed.stderr
