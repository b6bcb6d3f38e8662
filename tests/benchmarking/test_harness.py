"""remax_tf.benchmarking.harness: isolated runs, configs, the report."""

import json
import os

import pytest

from remax_tf.benchmarking.harness import data_config
from remax_tf.benchmarking.harness import model_config
from remax_tf.benchmarking.harness import print_report
from remax_tf.benchmarking.harness import run_isolated
from remax_tf.benchmarking.harness import run_isolated_each

DEMO = "configs/demo/shapes_remax.textproto"


def test_run_isolated_runs_in_another_process_and_reraises():
    assert run_isolated(os.getpid) != os.getpid()
    assert run_isolated(pow, 2, 5) == 32
    with pytest.raises(ValueError):
        run_isolated(int, "not a number")


def test_run_isolated_each_gives_each_call_a_fresh_process():
    calls = [(2, 3), (3, 2), (5, 1)]
    results = {i: f.result() for i, f in run_isolated_each(pow, calls, workers=2)}
    assert results == {0: 8, 1: 9, 2: 5}
    pids = [f.result() for _, f in run_isolated_each(os.getpid, [(), ()], 1)]
    assert len(set(pids)) == 2


def test_configs(repo_root, monkeypatch):
    monkeypatch.delenv("REMAX_DATA_DIR", raising=False)
    config = data_config(str(repo_root / DEMO), [], "/data/here")
    patterns = list(config.train_dataset_options.file_pattern)
    assert patterns and all(p.startswith("/data/here/") for p in patterns)
    # A model-only config reads unset placeholders as empty.
    config = model_config(str(repo_root / DEMO), ["train_dataset_options.batch_size=3"])
    assert config.train_dataset_options.batch_size == 3
    assert not any("${" in p for p in config.train_dataset_options.file_pattern)


def test_report_ends_with_the_json_line(tmp_path, capsys):
    record = {"rows": {"a": 1.5}, "steps": 2}
    output = tmp_path / "sub" / "out.json"
    print_report("| table |", record, str(output))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| table |"
    assert json.loads(lines[-1]) == record
    assert json.loads(output.read_text()) == record
