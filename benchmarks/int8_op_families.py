"""Where full int8 is slower than fp32: TFLite latency per op family.

ReMaX-T's full-int8 network runs slower than its fp32 one under XNNPACK
(docs/benchmarks.md, "int8"). This script times small stacks of one op family
each (four blocks on a 112x112x32 input: 3x3 conv + ReLU, depthwise +
pointwise, conv + hard-swish, squeeze-excite, conv + batch norm), converted to
fp32 and to full int8 exactly as ``remax_tf.export.tflite`` converts (post-
training, representative data, int8 builtins, float input), and prints the
fp32 / int8 speed ratio of each: > 1 means int8 is faster. The interpreter is
TensorFlow's with its default XNNPACK delegate, as ``benchmarks/latency.py``.

    python benchmarks/int8_op_families.py --threads 1 --repeats 20 \\
        --output_json benchmarks/results/int8_op_families.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from remax_tf.benchmarking.harness import print_report

INPUT_SHAPE = (1, 112, 112, 32)
NUM_BLOCKS = 4
CALIBRATION_BATCHES = 4


def _hard_swish(x):
    return x * tf.nn.relu6(x + 3.0) / 6.0


def _block(kind: str, x):
    layers = tf_keras.layers
    channels = INPUT_SHAPE[-1]
    if kind == "conv3x3_relu":
        return layers.ReLU()(layers.Conv2D(channels, 3, padding="same")(x))
    if kind == "depthwise_pointwise_relu":
        x = layers.ReLU()(layers.DepthwiseConv2D(3, padding="same")(x))
        return layers.ReLU()(layers.Conv2D(channels, 1)(x))
    if kind == "conv3x3_hard_swish":
        return layers.Activation(_hard_swish)(
            layers.Conv2D(channels, 3, padding="same")(x)
        )
    if kind == "squeeze_excite":
        scale = layers.GlobalAveragePooling2D(keepdims=True)(x)
        scale = layers.Conv2D(channels // 4, 1, activation="relu")(scale)
        scale = layers.Conv2D(channels, 1, activation="hard_sigmoid")(scale)
        return layers.Multiply()([layers.Conv2D(channels, 3, padding="same")(x), scale])
    if kind == "conv3x3_batch_norm_relu":
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))
    raise ValueError(f"unknown op family {kind!r}; known: {', '.join(FAMILIES)}.")


FAMILIES = (
    "conv3x3_relu",
    "depthwise_pointwise_relu",
    "conv3x3_hard_swish",
    "squeeze_excite",
    "conv3x3_batch_norm_relu",
)


def build_stack(kind: str) -> tf_keras.Model:
    """``NUM_BLOCKS`` blocks of one op family on a fixed-size input."""
    inputs = tf_keras.Input(INPUT_SHAPE[1:], batch_size=INPUT_SHAPE[0])
    x = inputs
    for _ in range(NUM_BLOCKS):
        x = _block(kind, x)
    return tf_keras.Model(inputs, x)


def convert(model: tf_keras.Model, int8: bool) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(CALIBRATION_BATCHES):
                yield [rng.random(INPUT_SHAPE, dtype=np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def time_ms(content: bytes, threads: int, repeats: int) -> Dict[str, float]:
    interpreter = tf.lite.Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    interpreter.set_tensor(
        detail["index"], np.random.default_rng(1).random(INPUT_SHAPE, np.float32)
    )
    interpreter.invoke()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(1000.0 * (time.perf_counter() - start))
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times))}


def measure(families: Sequence[str], threads: int, repeats: int) -> List[dict]:
    rows = []
    for kind in families:
        model = build_stack(kind)
        fp32 = time_ms(convert(model, int8=False), threads, repeats)
        int8 = time_ms(convert(model, int8=True), threads, repeats)
        rows.append(
            {
                "family": kind,
                "fp32": fp32,
                "int8": int8,
                "fp32_over_int8": fp32["median_ms"] / int8["median_ms"],
            }
        )
        print(f"[int8_op_families] {kind} done", file=sys.stderr, flush=True)
    return rows


def format_table(rows: Sequence[dict]) -> str:
    lines = [
        "| op family (4 blocks, 112x112x32) | fp32 ms, median (min) "
        "| int8 ms, median (min) | fp32 / int8 |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            f"{row[k]['median_ms']:.2f} ({row[k]['min_ms']:.2f})"
            for k in ("fp32", "int8")
        ]
        lines.append(
            f"| {row['family']} | {cells[0]} | {cells[1]} | {row['fp32_over_int8']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output_json")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(FAMILIES)}.")
    rows = measure(families, args.threads, args.repeats)
    record = {
        "threads": args.threads,
        "repeats": args.repeats,
        "input_shape": list(INPUT_SHAPE),
        "blocks": NUM_BLOCKS,
        "machine": platform.processor() or platform.machine(),
        "load_average": list(os.getloadavg()),
        "tensorflow": tf.__version__,
        "rows": rows,
    }
    print_report(format_table(rows), record, args.output_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
