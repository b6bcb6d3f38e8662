"""One job in a fresh process (``run_job``), the jobs with their cache
(``run_jobs``: ``<work_dir>/results/<job name>.json``, reused while its
override lists match), and the data and backbone every job reads.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import statistics
import time
from typing import Dict
from typing import List
from typing import Sequence
from typing import Tuple

from remax_tf.benchmarking.harness import data_config
from remax_tf.benchmarking.harness import run_isolated_each
from remax_tf.data import shapes

from .plan import pretrained_dir
from .rows import ABLATION_SHAPES
from .rows import BASE_CONFIG
from .rows import DATA_SEED
from .rows import NUM_TRAIN_IMAGES
from .rows import NUM_VAL_IMAGES
from .rows import PRETRAIN


# ---------------------------------------------------------------------------
# One run (in a subprocess).
def load_job_config(overrides: Sequence[str], data_dir: str):
    return data_config(str(BASE_CONFIG), overrides, os.path.dirname(data_dir))


def _recorded_metrics(metrics: Dict[str, object]) -> Dict[str, float]:
    """The evaluation metrics a run records, as floats."""
    return {
        k: float(metrics[k])
        for k in (
            "pq",
            "pq_things",
            "pq_stuff",
            "pq_things_class_agnostic",
            "sq",
            "rq",
            "miou",
        )
        if k in metrics
    }


def _metrics_by_step(eval_dir: str) -> Dict[int, Dict[str, float]]:
    out = {}
    for path in glob.glob(os.path.join(eval_dir, "metrics_step_*.json")):
        with open(path) as f:
            metrics = json.load(f)
        out[int(metrics["global_step"])] = _recorded_metrics(metrics)
    return dict(sorted(out.items()))


def run_job(
    job: Dict[str, object], data_dir: str, work_dir: str, threads: int, grappler: bool
):
    """Trains and evaluates one (variant, seed); returns a JSON-able dict."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if not grappler:
        # Graph optimisation is a large part of the start-up of a short run.
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    from remax_tf.training import NonFiniteLossError
    from remax_tf.training import run_experiment

    model_dir = os.path.join(work_dir, "runs", job["name"])
    shutil.rmtree(model_dir, ignore_errors=True)
    config = load_job_config(job["overrides"], data_dir)
    losses: List[Tuple[int, float]] = []
    rates: List[float] = []
    start = time.time()
    first_progress: List[float] = []

    def progress(stats):
        if not first_progress:
            first_progress.append(time.time() - start)
        losses.append((int(stats["step"]), float(stats["loss"])))
        rates.append(float(stats["steps_per_second"]))
        print(
            f"[{job['name']}] step {int(stats['step'])} loss {stats['loss']:.4f} "
            f"({stats['steps_per_second']:.2f} steps/s, {time.time() - start:.0f} s)",
            flush=True,
        )

    result = dict(job, diverged=None)
    try:
        run_experiment("train_and_eval", config, model_dir, progress=progress)
    except NonFiniteLossError as e:
        result["diverged"] = {"step": e.step, "term": e.term}
    workdir = os.path.join(model_dir, config.experiment_name)
    result["curve"] = {
        str(k): v for k, v in _metrics_by_step(os.path.join(workdir, "eval")).items()
    }
    steps = config.trainer_options.solver_options.training_number_of_steps
    final = result["curve"].get(str(steps)) if result["diverged"] is None else None
    result["final"] = final
    result["losses"] = losses
    result["train_seconds"] = time.time() - start
    # Steady-state rate: the loops after the first (which includes tracing).
    result["steps_per_second"] = statistics.median(rates[1:] or rates or [0.0])
    result["seconds_to_first_loop"] = first_progress[0] if first_progress else None
    result["extra"] = {}
    for evals in job["extra_evals"] if final is not None else []:
        eval_config = load_job_config(list(job["overrides"]) + list(evals), data_dir)
        metrics = run_experiment("eval", eval_config, model_dir)["metrics"]
        result["extra"]["+".join(evals)] = _recorded_metrics(metrics)
    result["wall_seconds"] = time.time() - start
    shutil.rmtree(model_dir, ignore_errors=True)
    return result


def cache_path(work_dir: str, job: dict) -> str:
    return os.path.join(work_dir, "results", job["name"] + ".json")


def reusable(cached: dict, job: dict) -> bool:
    """A cached run serves a job with the same overrides whose extra
    evaluations it already holds: a run made for Table 5 (evaluated once more
    with the heads kept) also serves every table that needs only its final
    metrics, so no group invalidates another's cache."""
    return cached.get("overrides") == job["overrides"] and all(
        evals in cached.get("extra_evals", []) for evals in job["extra_evals"]
    )


def run_jobs(
    jobs: Sequence[dict],
    data_dir: str,
    work_dir: str,
    workers: int,
    fresh: bool,
    grappler: bool = True,
) -> List[dict]:
    """Runs the jobs (cached results reused), ``workers`` at a time, each in
    its own spawned process (a fresh TensorFlow: graphs do not pile up)."""
    from remax_tf.json_io import write_json_atomic

    os.makedirs(os.path.join(work_dir, "results"), exist_ok=True)
    done, todo = {}, []
    for job in jobs:
        path = cache_path(work_dir, job)
        if not fresh and os.path.exists(path):
            with open(path) as f:
                cached = json.load(f)
            if reusable(cached, job):
                done[job["name"]] = cached
                continue
        todo.append(job)
    if done:
        print(f"[ablation] {len(done)} run(s) reused from {work_dir}/results")
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    calls = [(job, data_dir, work_dir, threads, grappler) for job in todo]
    for index, future in run_isolated_each(run_job, calls, workers):
        job = todo[index]
        result = future.result()
        # Atomic: an interrupted run leaves no half-written cache entry.
        write_json_atomic(cache_path(work_dir, job), result)
        done[job["name"]] = result
        pq = result["final"]["pq"] * 100 if result["final"] else float("nan")
        print(
            f"[ablation] done {job['name']}: PQ {pq:.2f}, "
            f"{result['wall_seconds']:.0f} s, diverged {result['diverged']} "
            f"({len(done)}/{len(jobs)})",
            flush=True,
        )
    return [done[j["name"]] for j in jobs]


def build_backbone(data_dir: str, pretrain_steps: int) -> Dict[str, object]:
    """Pre-trains (once, cached) the backbone every run starts from; returns
    its record (checkpoint, validation accuracy, seconds)."""
    from remax_tf.training import pretrain_backbone

    request = pretrain_backbone.PretrainRequest(**dict(PRETRAIN, steps=pretrain_steps))
    record = pretrain_backbone.pretrain(
        request, pretrained_dir(data_dir, pretrain_steps)
    )
    return {k: record[k] for k in ("request", "val_accuracy", "seconds")}


def build_data(work_dir: str) -> str:
    """Generates (once) the ablation's shapes_panoptic_v2."""
    data_dir = os.path.join(work_dir, "data", "shapes_v2_ablation")
    # Keeps the shards of an identical earlier request, replaces any other.
    shapes.generate(
        data_dir,
        NUM_TRAIN_IMAGES,
        NUM_VAL_IMAGES,
        DATA_SEED,
        shapes.ShapesConfig(**ABLATION_SHAPES),
        num_workers=1,
    )
    return data_dir
