"""Batch-1 CPU latency and size of the exported models (issue 8, docs/benchmarks.md).

    python benchmarks/latency.py \\
        --config_file configs/coco/remax_t.textproto \\
        --config_file configs/coco/remax_s.textproto \\
        --config_file configs/demo/shapes_remax.textproto \\
        --output_json benchmarks/results/latency.json

For every config, at its evaluation crop (or ``--crop``), one uint8 image of
that size goes through the whole serving pipeline (evaluation resize/pad,
model, mask-wise post-processing, undo) in each variant:

* ``keras``: :meth:`ServingModule.serve` as a ``tf.function`` (no XLA);
* ``saved_model``: the exported SavedModel's ``serving_default``, reloaded;
* ``tflite_fp32``, ``tflite_fp16``, ``tflite_dynamic``, ``tflite_int8``: the
  TFLite files in ``ai_edge_litert``'s interpreter (XNNPACK delegate,
  ``--threads`` threads); int8 runs its model file then ``postprocess.tflite``.

Latency is the median (and the minimum) wall time of ``--repeats`` calls
after ``--warmup`` calls; TensorFlow runs with ``--threads`` intra-op threads too. Weights are
the initial ones (latency does not depend on them; the mask-wise loop always
visits every slot) unless ``--checkpoint`` is given; int8 calibrates on
``--calibration_steps`` random images then. Sizes: the SavedModel directory
and each TFLite file, in MB (10^6 bytes); the JSON also lists each TFLite
file's op types. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
VARIANTS = (
    "keras",
    "saved_model",
    "tflite_fp32",
    "tflite_fp16",
    "tflite_dynamic",
    "tflite_int8",
)
_TFLITE_MODES = {
    "tflite_fp32": "none",
    "tflite_fp16": "fp16",
    "tflite_dynamic": "dynamic",
    "tflite_int8": "int8",
}


def _load_config(path: str, overrides: Sequence[str]):
    from remax_tf.config import load_config

    with open(path, encoding="utf-8") as f:
        names = set(_PLACEHOLDER.findall(f.read()))
    environ = dict(os.environ)
    for name in names:
        environ.setdefault(name, "")
    return load_config(path, overrides, environ=environ, validate=False)


def _crop_overrides(crop: Optional[int]) -> List[str]:
    if not crop:
        return []
    overrides = []
    for options in ("train_dataset_options", "eval_dataset_options"):
        overrides += [
            f"{options}.crop_size=[{crop}, {crop}]",
            f"{options}.min_resize_value={crop}",
            f"{options}.max_resize_value={crop}",
        ]
    return overrides


def _times_ms(call: Callable[[], object], warmup: int, repeats: int) -> List[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000.0 * (time.perf_counter() - start))
    return times


def _record(result: Dict[str, object], variant: str, times: List[float]) -> None:
    """Median (the reported figure) and minimum (least disturbed by other
    processes) of one variant's call times."""
    result["latency_ms"][variant] = statistics.median(times)
    result["latency_min_ms"][variant] = min(times)


def _directory_mb(path: str) -> float:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 1e6


def benchmark_config(
    config_file: str,
    variants: Sequence[str],
    crop: Optional[int],
    threads: int,
    warmup: int,
    repeats: int,
    checkpoint: Optional[str],
    calibration_steps: int,
) -> Dict[str, object]:
    from ai_edge_litert.interpreter import Interpreter
    import tensorflow as tf

    from remax_tf.export import tflite
    from remax_tf.export.saved_model import build_serving_module
    from remax_tf.export.saved_model import eval_preprocess_config
    from remax_tf.export.saved_model import export_descriptor
    from remax_tf.export.saved_model import export_saved_model
    from remax_tf.model import build_model
    from remax_tf.model.checkpoint_restore import restore_items

    config = _load_config(config_file, _crop_overrides(crop))
    descriptor = export_descriptor(config)
    size = tuple(eval_preprocess_config(config, descriptor).crop_size)
    model = build_model(config, descriptor)
    model(tf.zeros([1, *size, 3]), training=False)
    if checkpoint:
        restore_items(model.checkpoint_items, checkpoint, what="--checkpoint")
    module = build_serving_module(config, model, descriptor)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, [*size, 3], dtype=np.uint8)
    result: Dict[str, object] = {
        "config": config_file,
        "backbone": config.model_options.backbone.name,
        "input_size": list(size),
        "num_inference_parameters": int(
            sum(v.shape.num_elements() for v in module.inference_variables)
        ),
        "latency_ms": {},
        "latency_min_ms": {},
        "size_mb": {},
        "tflite_ops": {},
    }
    sizes = result["size_mb"]
    with tempfile.TemporaryDirectory() as workdir:
        if "keras" in variants:
            serve = tf.function(
                module.serve,
                input_signature=[tf.TensorSpec([1, *size, 3], tf.uint8)],
                autograph=False,
            )
            batch = tf.constant(image[None])

            def keras_call():
                return [v.numpy() for v in serve(batch).values()]

            _record(result, "keras", _times_ms(keras_call, warmup, repeats))
        if "saved_model" in variants:
            path = export_saved_model(module, workdir)
            sizes["saved_model"] = _directory_mb(path)
            signature = tf.saved_model.load(path).signatures["serving_default"]
            single = tf.constant(image)

            def saved_model_call():
                return [v.numpy() for v in signature(image=single).values()]

            _record(result, "saved_model", _times_ms(saved_model_call, warmup, repeats))
        for variant in variants:
            if variant not in _TFLITE_MODES:
                continue
            mode = _TFLITE_MODES[variant]
            options = {}
            if mode == "int8":
                calibration = [
                    rng.integers(0, 256, [*size, 3], dtype=np.uint8)
                    for _ in range(calibration_steps)
                ]
                options = dict(
                    representative_images=lambda: iter(calibration),
                    calibration_steps=calibration_steps,
                )
            files = tflite.convert_to_tflite(module, size, mode, **options)
            sizes[variant] = sum(len(c) for c in files.values()) / 1e6
            result["tflite_ops"][variant] = {
                name: tflite.op_types(content) for name, content in files.items()
            }
            runners = [
                Interpreter(
                    model_content=files[name], num_threads=threads
                ).get_signature_runner()
                for name in (tflite.model_file_name(mode), tflite.POSTPROCESS_FILE)
                if name in files
            ]
            batch = image[None]

            def tflite_call(runners=runners, batch=batch):
                outputs = runners[0](image=batch)
                for runner in runners[1:]:
                    outputs = runner(**outputs)
                return outputs

            _record(result, variant, _times_ms(tflite_call, warmup, repeats))
    return result


def format_table(results: Sequence[Dict[str, object]]) -> str:
    lines = [
        "| model | input | variant | median (ms) | min (ms) | size (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        name = os.path.basename(str(result["config"])).replace(".textproto", "")
        size = "x".join(str(s) for s in result["input_size"])
        for variant, ms in result["latency_ms"].items():
            mb = result["size_mb"].get(variant)
            mb_text = f"{mb:.1f}" if mb is not None else "-"
            low = result["latency_min_ms"][variant]
            lines.append(
                f"| {name} | {size} | {variant} | {ms:.0f} | {low:.0f} | {mb_text} |"
            )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_file", action="append", required=True)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"Comma-separated subset of {', '.join(VARIANTS)}.",
    )
    parser.add_argument(
        "--crop", type=int, help="Square input size (default: eval crop)."
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--checkpoint", help="Optional checkpoint (one config only).")
    parser.add_argument("--calibration_steps", type=int, default=8)
    parser.add_argument("--output_json", help="Also write the results here.")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}.")
    if args.checkpoint and len(args.config_file) != 1:
        parser.error("--checkpoint needs exactly one --config_file.")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    results = [
        benchmark_config(
            config_file,
            variants,
            args.crop,
            args.threads,
            args.warmup,
            args.repeats,
            args.checkpoint,
            args.calibration_steps,
        )
        for config_file in args.config_file
    ]
    report = {
        "threads": args.threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "load_average": list(os.getloadavg()),
        "results": results,
    }
    print(format_table(results))
    if args.output_json:
        os.makedirs(os.path.dirname(args.output_json) or ".", exist_ok=True)
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
