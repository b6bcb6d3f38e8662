"""Parameters, multiply-adds and CPU latency of a config's model.

    python benchmarks/model_stats.py --config_file configs/coco/remax_m.textproto
    python benchmarks/model_stats.py --config_file X --crop 641 --repeats 5

Reports, for one inference forward pass at the config's evaluation crop (or
``--crop``), batch 1, no post-processing:

* ``params_inference``: trainable parameters of the inference model (what the
  paper's Table 12 and DeepLab2 count); ``params_training_only``: those of the
  training-only layers (kMaX's auxiliary semantic branch, ReMaX's semantic
  heads), built afterwards by one training call on a 65x65 input (parameter
  counts do not depend on the input size);
* ``gmacs``: multiply-accumulates, counted from the traced inference graph
  (``remax_tf.benchmarking.macs.count_macs``): every Conv2D,
  DepthwiseConv2dNative, MatMul, BatchMatMul and Einsum op
  contributes the product of its output size and its contraction size, read
  from the static shapes (an Einsum: the product of the sizes of all its
  indices). Normalisation, activations, softmax, resizes and additions are not
  counted. This is the paper's "FLOPs" (multiply-adds): it gives 74.6 G for
  DeepLab2's COCO kMaX R50 at 641 (docs/models.md);
* ``latency_ms``: median wall time of the ``tf.function``-compiled forward
  after ``--warmup`` calls, over ``--repeats`` calls, on this machine's CPU
  (no XLA).

Prints a table, then as its last line one JSON object.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Optional
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from remax_tf.benchmarking.harness import model_config  # noqa: E402
from remax_tf.benchmarking.harness import print_report  # noqa: E402
from remax_tf.benchmarking.macs import count_macs  # noqa: E402
from remax_tf.model import build_model  # noqa: E402
from remax_tf.protos import config_pb2  # noqa: E402

# Input size of the training call that builds the training-only layers.
TRAINING_BUILD_CROP = 65


def _eval_crop(config: config_pb2.ExperimentOptions) -> tuple:
    crop = list(config.eval_dataset_options.crop_size) or list(
        config.train_dataset_options.crop_size
    )
    if len(crop) != 2:
        raise ValueError(
            "the config sets no eval_dataset_options.crop_size (or train crop); "
            "pass --crop."
        )
    return tuple(crop)


def _count(variables) -> int:
    return int(sum(np.prod(v.shape.as_list()) for v in variables))


def model_stats(
    config_file: str,
    crop: Optional[Sequence[int]] = None,
    repeats: int = 5,
    warmup: int = 2,
    overrides: Sequence[str] = (),
    measure_latency: bool = True,
) -> dict:
    config = model_config(config_file, overrides)
    height, width = crop if crop else _eval_crop(config)
    model = build_model(config)

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32)])
    def forward(images):
        return model(images, training=False)

    concrete = forward.get_concrete_function()
    params_inference = _count(model.trainable_variables)
    macs = count_macs(concrete.graph, model.name)
    latency_ms = None
    if measure_latency:
        images = tf.random.uniform([1, height, width, 3], 0.0, 255.0, seed=0)
        for _ in range(warmup):
            forward(images)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            outputs = forward(images)
            for value in outputs.values():
                value.numpy()
            times.append(1000.0 * (time.perf_counter() - start))
        latency_ms = statistics.median(times)
    model(tf.zeros([1, TRAINING_BUILD_CROP, TRAINING_BUILD_CROP, 3]), training=True)
    params_training_only = _count(
        [v for v in model.training_only_variables if v.trainable]
    )
    return {
        "config": config_file,
        "backbone": config.model_options.backbone.name,
        "crop": [int(height), int(width)],
        "params_inference": params_inference,
        "params_training_only": params_training_only,
        "params_by_component": {
            name: _count(item.trainable_variables)
            for name, item in model.checkpoint_items.items()
        },
        "gmacs": sum(macs.values()) / 1e9,
        "gmacs_by_component": {k: v / 1e9 for k, v in sorted(macs.items())},
        "latency_ms": latency_ms,
        "latency_repeats": repeats if measure_latency else 0,
    }


def format_table(stats: dict) -> str:
    latency = f"{stats['latency_ms']:.0f}" if stats["latency_ms"] is not None else "-"
    lines = [
        f"{'config':<44} {'crop':>10} {'params(M)':>10} {'train-only(M)':>14} "
        f"{'GMACs':>8} {'latency(ms)':>12}",
        f"{stats['config']:<44} {'x'.join(map(str, stats['crop'])):>10} "
        f"{stats['params_inference'] / 1e6:>10.3f} "
        f"{stats['params_training_only'] / 1e6:>14.3f} {stats['gmacs']:>8.2f} "
        f"{latency:>12}",
        "  GMACs by component: "
        + ", ".join(f"{k} {v:.3f}" for k, v in stats["gmacs_by_component"].items()),
        "  params by checkpoint item: "
        + ", ".join(f"{k} {v}" for k, v in stats["params_by_component"].items() if v),
    ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_file", required=True)
    parser.add_argument(
        "--crop", type=int, nargs="+", help="H [W]; default: the eval crop"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no_latency", action="store_true")
    parser.add_argument(
        "--config_override", action="append", default=[], help="field.path=value"
    )
    args = parser.parse_args(argv)
    crop = None
    if args.crop:
        crop = (args.crop[0], args.crop[-1])
    stats = model_stats(
        args.config_file,
        crop,
        repeats=args.repeats,
        warmup=args.warmup,
        overrides=args.config_override,
        measure_latency=not args.no_latency,
    )
    print_report(format_table(stats), stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
