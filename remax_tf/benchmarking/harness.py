"""What the benchmark scripts (``benchmarks/``) share: isolated runs, their
configs, their report.

* **Isolated runs.** A measurement that needs its own TensorFlow (its own
  thread pools, graphs or peak memory) runs as a function in a freshly
  spawned Python process: :func:`run_isolated` for one call,
  :func:`run_isolated_each` for several, ``workers`` at a time. The function
  must be importable by the child: a module-level function of the script
  run as ``python benchmarks/<script>.py`` (``__main__``) or of a package.
* **Configs.** :func:`model_config` for scripts that only build a model
  (placeholders of data paths and checkpoints read as empty, not validated);
  :func:`data_config` for scripts that read data under ``data_dir`` (the
  ``${REMAX_DATA_DIR}`` of the shipped configs) and train or evaluate
  (validated as the trainer validates).
* **Report.** :func:`print_report`: the table, the record as a JSON file if
  asked, and the record as one JSON line, the last line of stdout.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
from typing import Callable
from typing import Iterator
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from remax_tf.config import load_config
from remax_tf.json_io import write_json_atomic
from remax_tf.protos import config_pb2


def _spawn_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    # One task per process: each call gets a fresh interpreter and TensorFlow.
    return concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        max_tasks_per_child=1,
    )


def run_isolated(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a fresh spawned process; its return value
    (picklable), or its exception re-raised here
    (``concurrent.futures.process.BrokenProcessPool`` if the process died,
    e.g. killed for memory)."""
    with _spawn_pool(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def run_isolated_each(
    fn: Callable, calls: Sequence[Tuple], workers: int = 1
) -> Iterator[Tuple[int, concurrent.futures.Future]]:
    """``fn(*call)`` for each of ``calls``, each in its own fresh spawned
    process, ``workers`` at a time; yields ``(index into calls, future)`` as
    they finish (``future.result()`` returns or raises)."""
    with _spawn_pool(workers) as pool:
        futures = {pool.submit(fn, *call): i for i, call in enumerate(calls)}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future


def model_config(
    path: str, overrides: Sequence[str] = ()
) -> config_pb2.ExperimentOptions:
    """A config to build a model from, reading no data: ``${VAR}``
    placeholders not set in the environment read as empty (they name data
    paths and checkpoints); not validated."""
    return load_config(
        path, list(overrides), validate=False, unset_placeholders="empty"
    )


def data_config(
    path: str,
    overrides: Sequence[str],
    data_dir: str,
    environ: Optional[Mapping[str, str]] = None,
) -> config_pb2.ExperimentOptions:
    """A config whose data lies under ``data_dir`` (``${REMAX_DATA_DIR}``),
    its other placeholders from ``environ`` (default: the environment);
    validated as the trainer validates it."""
    values = dict(os.environ if environ is None else environ, REMAX_DATA_DIR=data_dir)
    return load_config(path, list(overrides), environ=values)


def print_report(
    table: str,
    record: Mapping[str, object],
    output_json: Optional[str] = None,
    indent: int = 2,
) -> None:
    """Prints ``table``; writes ``record`` to ``output_json`` when given
    (its directory created; atomically, :func:`write_json_atomic`); prints ``record`` as one JSON line, last."""
    print(table)
    if output_json:
        write_json_atomic(output_json, record, indent=indent)
    print(json.dumps(record), flush=True)
