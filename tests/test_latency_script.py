"""benchmarks/latency.py: the split into pre/network/post/undo,
several thread counts in one run (TensorFlow's in a child process), the
table and the JSON, on the demo config at crop 65 with the approximate
post-processing (a --config_override, passed to the child too)."""

import json

import pytest


@pytest.mark.slow  # converts TFLite files and starts a child process
def test_split_at_two_thread_counts(run_benchmark, tmp_path):
    output = tmp_path / "latency.json"
    completed = run_benchmark(
        "latency.py",
        "--config_file",
        "configs/demo/shapes_remax.textproto",
        "--crop",
        "65",
        "--variants",
        "saved_model,tflite_fp32,tflite_int8_float_decoder",
        "--threads",
        "1,2",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--config_override",
        "evaluator_options.post_processing_resolution=model_output",
        "--output_json",
        output,
    )
    assert "total / network" in completed.stdout.splitlines()[0]
    report = json.loads(output.read_text())
    assert report["threads"] == [1, 2]
    (result,) = report["results"]
    assert result["input_size"] == [65, 65]
    assert result["config_overrides"] == [
        "evaluator_options.post_processing_resolution=model_output"
    ]
    # The class head is scaled so that slots pass and the paste runs.
    assert 0 < result["num_candidate_slots"] <= result["num_slots"] == 16
    # int8 with the k-means path in float: one file, float ops and the
    # float post-processing loop inside.
    ops = result["tflite_ops"]["tflite_int8_float_decoder"]
    assert sorted(ops) == ["model_int8.tflite"]
    assert ops["model_int8.tflite"]["DEQUANTIZE"] > 0
    assert ops["model_int8.tflite"]["WHILE"] >= 1
    for variant in ("saved_model", "tflite_fp32", "tflite_int8_float_decoder"):
        for threads in ("1", "2"):
            parts = result["latency"][variant][threads]
            assert set(parts) == {"total", "pre", "network", "post", "undo"}
            for timing in parts.values():
                assert 0 < timing["min_ms"] <= timing["median_ms"]
