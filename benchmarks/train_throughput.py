"""Training throughput on this machine: steps/s, examples/s, peak memory.

    python benchmarks/train_throughput.py [--steps 10] [--warmup 3]
        [--rows demo,remax_t]

Rows:

* ``demo``: ``configs/demo/shapes_remax.textproto`` (crop 129, batch 8) and
  its kMaX twin ``shapes_kmax`` (no ReMaX heads);
* ``remax_t``: ``configs/coco/remax_t.textproto`` (MobileNetV3-Small, crop
  641) at batch 1, 2 and 4, and the same model with ReMaX off, on
  shapes_panoptic images resized to 641 (no COCO download needed; the step
  cost does not depend on the image content).

Each setting runs in its own freshly spawned process (``run_isolated``, so
its peak resident memory is its own): pulls real batches from the input
pipeline (held in memory, so input speed does not count), builds the model, the loss and the trainer that
``--mode train`` builds (``remax_tf.training.trainer.build_trainer``: the
config's optimiser, the backbone's own optimiser with its learning-rate
multiplier, L2 for non-AdamW solvers, gradient clipping, the loss checks), and
runs the trainer's own loop (orbit's ``train``, as the controller does): one
step to trace it, ``--warmup`` steps, then ``--steps`` timed steps. It also
times the forward pass alone and forward + loss, which splits a step into
forward / loss / backward+update; the difference between a ReMaX row and its
kMaX twin is what ReMaX's training-only heads and losses cost. Prints a
table, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import sys
import tempfile
import time
from typing import Dict
from typing import List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from remax_tf.benchmarking.harness import data_config  # noqa: E402
from remax_tf.benchmarking.harness import print_report  # noqa: E402
from remax_tf.benchmarking.harness import run_isolated  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo"
REMAX_T = REPO / "configs" / "coco" / "remax_t.textproto"

# Training images generated when --data_dir holds no shapes_panoptic.
THROUGHPUT_IMAGES = 64

# (name, config, overrides)
SETTINGS = {
    "demo": [
        ("demo_remax_b8", DEMO / "shapes_remax.textproto", []),
        ("demo_kmax_b8", DEMO / "shapes_kmax.textproto", []),
    ],
    "remax_t": [
        (f"remax_t_641_b{b}", REMAX_T, [f"train_dataset_options.batch_size={b}"])
        for b in (1, 2, 4)
    ]
    + [
        (
            "kmax_t_641_b2",
            REMAX_T,
            ["train_dataset_options.batch_size=2", "model_options.remax.enabled=false"],
        )
    ],
}


# remax_t reads shapes_panoptic shards instead of COCO; crop and resize stay 641.
def shapes_input(data_dir: str) -> List[str]:
    """Overrides that feed ReMaX-T shapes_panoptic images (no copy-paste)."""
    return [
        f"train_dataset_options.file_pattern=[{data_dir}/shapes_panoptic/train-*.tfrecord]",
        "train_dataset_options.augmentations="
        "{panoptic_copy_paste {panoptic_copy_paste_scale: 0.0}}",
    ]


def _time(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    tf_nest_numpy(out)
    return (time.perf_counter() - start) / steps


def tf_nest_numpy(out):
    import tensorflow as tf

    for value in tf.nest.flatten(out):
        value.numpy()


def _in_memory_dataset(batches, strategy):
    """The held batches, repeated, as the trainer's (distributed) dataset."""
    import tensorflow as tf

    stacked = tf.nest.map_structure(lambda *t: tf.stack(t), *batches)
    dataset = tf.data.Dataset.from_tensor_slices(stacked).repeat()
    return strategy.experimental_distribute_dataset(dataset)


def run_setting(
    config_path: str, overrides: List[str], data_dir: str, steps: int, warmup: int
) -> Dict[str, float]:
    """One setting, in this process (called in a child process)."""
    import orbit
    import tensorflow as tf

    from remax_tf import common
    from remax_tf.data import build_dataset
    from remax_tf.data import datasets
    from remax_tf.losses import build_loss
    from remax_tf.training import distribution
    from remax_tf.training.train_lib import build_keras_model
    from remax_tf.training.trainer import build_trainer

    # The COCO configs' placeholders: random initial weights, and a train set
    # that the shapes_input overrides replace.
    environ = {
        "EXPERIMENT_NAME": "train_throughput",
        "INIT_CHECKPOINT": "",
        "PRETRAINED_WEIGHTS": "",
        "TRAIN_SET": "train",
        "VAL_SET": "val",
    }
    config = data_config(config_path, overrides, data_dir, environ=environ)
    descriptor = datasets.get_dataset_descriptor(config.train_dataset_options.dataset)
    batches = [
        b for b in build_dataset(config.train_dataset_options, is_training=True).take(4)
    ]
    # The objects --mode train builds (train_lib._run_loops): same strategy
    # rule, model, loss and Trainer (optimiser, backbone optimiser, L2,
    # clipping, loss checks), fed the held batches instead of the pipeline.
    strategy = distribution.create_strategy()
    with strategy.scope():
        model = build_keras_model(
            config, descriptor, config.train_dataset_options.crop_size, training=True
        )
        loss_fn = build_loss(config, descriptor)
        trainer = build_trainer(
            config,
            model,
            loss_fn,
            _in_memory_dataset(batches, strategy),
            strategy,
            orbit.utils.create_global_step(),
        )
    index = {"i": 0}

    def next_batch():
        index["i"] = (index["i"] + 1) % len(batches)
        return batches[index["i"]]

    @tf.function
    def forward(batch):
        return model(batch[common.IMAGE], training=True)[
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY
        ]

    @tf.function
    def forward_loss(batch):
        return loss_fn(batch, model(batch[common.IMAGE], training=True))[
            common.TOTAL_LOSS
        ]

    results = {}
    for name, fn in (("forward", forward), ("forward_loss", forward_loss)):
        start = time.perf_counter()
        tf_nest_numpy(fn(next_batch()))
        results[f"trace_{name}_s"] = time.perf_counter() - start
        for _ in range(warmup):
            tf_nest_numpy(fn(next_batch()))
        results[f"{name}_s"] = _time(lambda fn=fn: fn(next_batch()), steps)
    results.update(_time_trainer(trainer, steps, warmup))
    batch_size = int(batches[0][common.IMAGE].shape[0])
    results.update(
        batch=batch_size,
        steps_per_second=1.0 / results["step_s"],
        examples_per_second=batch_size / results["step_s"],
        peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        params_trainable=int(
            sum(v.shape.num_elements() for v in model.trainable_variables)
        ),
    )
    return results


def _time_trainer(trainer, steps: int, warmup: int) -> Dict[str, float]:
    """The trainer's own loop (orbit's ``train``, as the controller calls it
    every ``steps_per_loop`` steps): the first call of one step traces it;
    the loop end reads the losses back, so the steps have finished."""
    import tensorflow as tf

    def train(num_steps: int) -> float:
        start = time.perf_counter()
        trainer.train(tf.constant(num_steps, tf.int32))
        return time.perf_counter() - start

    trace = train(1)
    if warmup:
        train(warmup)
    return {"trace_step_s": trace, "step_s": train(steps) / steps}


def _ensure_shapes_data(data_dir: str) -> None:
    from remax_tf.data import shapes

    output_dir = os.path.join(data_dir, "shapes_panoptic")
    existing = shapes.read_generation(output_dir) or {}
    if existing.get("num_train", 0) >= THROUGHPUT_IMAGES:
        return  # any shapes images will do: keep the user's dataset as it is
    shapes.generate(
        output_dir,
        num_train=THROUGHPUT_IMAGES,
        num_val=0,
        num_workers=1,
    )


def format_table(rows: Dict[str, Dict[str, float]]) -> str:
    """One line per setting; the step split into forward / loss /
    backward + update."""
    header = (
        f"{'setting':<16} {'batch':>5} {'steps/s':>8} {'img/s':>7} {'fwd ms':>8} "
        f"{'loss ms':>8} {'bwd+upd ms':>10} {'trace s':>8} {'peak GB':>8}"
    )
    lines = [header, "-" * len(header)]
    for name, r in rows.items():
        fwd = 1000 * r["forward_s"]
        loss = 1000 * (r["forward_loss_s"] - r["forward_s"])
        bwd = 1000 * (r["step_s"] - r["forward_loss_s"])
        lines.append(
            f"{name:<16} {r['batch']:>5} {r['steps_per_second']:>8.2f} "
            f"{r['examples_per_second']:>7.1f} {fwd:>8.0f} {loss:>8.0f} {bwd:>10.0f} "
            f"{r['trace_step_s']:>8.1f} {r['peak_rss_gb']:>8.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", default="demo,remax_t")
    parser.add_argument(
        "--data_dir",
        default=None,
        help="a directory holding shapes_panoptic/ (used as it is when it has "
        f"at least {THROUGHPUT_IMAGES} training images, else generated there); "
        "default: a new temporary directory",
    )
    args = parser.parse_args()

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="remax_throughput_")
    _ensure_shapes_data(data_dir)
    rows = {}
    for group in args.rows.split(","):
        for name, config, overrides in SETTINGS[group]:
            extra = shapes_input(data_dir) if group == "remax_t" else []
            try:
                rows[name] = run_isolated(
                    run_setting,
                    str(config),
                    overrides + extra,
                    data_dir,
                    args.steps,
                    args.warmup,
                )
            except Exception as e:  # a failed setting: report it, time the rest
                print(f"{name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            r = rows[name]
            print(
                f"{name}: {r['steps_per_second']:.2f} steps/s",
                file=sys.stderr,
                flush=True,
            )

    record = {
        "rows": rows,
        "steps": args.steps,
        "warmup": args.warmup,
        "cpu_count": os.cpu_count(),
    }
    print_report(format_table(rows), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
