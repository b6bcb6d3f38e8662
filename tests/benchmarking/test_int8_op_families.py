"""benchmarks/int8_op_families.py: one op family timed in fp32, int8 with
every op quantised and the export's int8; table, JSON and XNNPACK partitions."""

import json


def test_one_family_is_timed_and_its_partitions_counted(run_benchmark, tmp_path):
    output = tmp_path / "int8.json"
    completed = run_benchmark(
        "int8_op_families.py",
        "--families",
        "conv3x3_gelu,layer_norm",
        "--repeats",
        "2",
        "--output_json",
        output,
    )
    assert completed.stdout.startswith("| op family")
    report = json.loads(output.read_text())
    row, layer_norm = report["rows"]
    assert row["family"] == "conv3x3_gelu"
    for variant in ("fp32", "int8_all", "int8"):
        assert 0 < row[variant]["min_ms"] <= row[variant]["median_ms"]
    assert row["fp32_over_int8"] == row["fp32"]["median_ms"] / row["int8"]["median_ms"]
    # XNNPACK takes GELU in float, not in int8: quantised, each of the four
    # splits the delegated graph; the export keeps it float, one partition.
    assert row["fp32"]["xnnpack_partitions"] == 1
    assert row["int8_all"]["xnnpack_partitions"] == 5
    assert row["int8"]["xnnpack_partitions"] == 1
    # Layer norm's SUB/ADD/RSQRT/SQUARED_DIFFERENCE: rejected in int8.
    assert layer_norm["int8_all"]["xnnpack_partitions"] > 1
    assert layer_norm["int8"]["xnnpack_partitions"] == 1


def test_unknown_family_is_named(run_benchmark):
    completed = run_benchmark(
        "int8_op_families.py", "--families", "winograd", check=False
    )
    assert completed.returncode == 2
    assert "unknown families ['winograd']" in completed.stderr
