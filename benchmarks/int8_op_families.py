"""Where full int8 is slower than fp32: TFLite latency per op family.

ReMaX-T's full-int8 network ran slower than its fp32 one under XNNPACK
(docs/benchmarks.md, "int8"). This script times small stacks of one op family
each (four blocks on a 112x112x32 input: 3x3 conv + ReLU, depthwise +
pointwise, conv + hard-swish, conv + GELU, squeeze-excite, conv + batch norm,
layer norm), converted three ways: fp32; full int8 with every op that has an
int8 kernel quantised (``int8_all``, the export before
``XNNPACK_FLOAT_OPS``); and the export's int8 (``remax_tf.export.tflite.
quantize_int8``: the op types XNNPACK cannot run in int8 kept in float). For
each it prints the time and the number of XNNPACK partitions (1 = the whole
stack delegated; each op XNNPACK rejects splits it). The interpreter is
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
from remax_tf.export import tflite

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
    if kind == "conv3x3_gelu":
        return layers.Activation(lambda t: tf.nn.gelu(t, approximate=False))(
            layers.Conv2D(channels, 3, padding="same")(x)
        )
    if kind == "layer_norm":
        return layers.LayerNormalization()(layers.Conv2D(channels, 1)(x))
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
    "conv3x3_gelu",
    "squeeze_excite",
    "conv3x3_batch_norm_relu",
    "layer_norm",
)
# fp32; int8 with every op that has an int8 kernel quantised; the export's int8.
VARIANTS = ("fp32", "int8_all", "int8")


def build_stack(kind: str) -> tf_keras.Model:
    """``NUM_BLOCKS`` blocks of one op family on a fixed-size input."""
    inputs = tf_keras.Input(INPUT_SHAPE[1:], batch_size=INPUT_SHAPE[0])
    x = inputs
    for _ in range(NUM_BLOCKS):
        x = _block(kind, x)
    return tf_keras.Model(inputs, x)


def _representative():
    rng = np.random.default_rng(0)
    for _ in range(CALIBRATION_BATCHES):
        yield [rng.random(INPUT_SHAPE, dtype=np.float32)]


def convert(model: tf_keras.Model, variant: str) -> bytes:
    """``variant`` of ``VARIANTS``, converted as ``remax_tf.export.tflite``
    converts (int8: full integer with float fallback, float input)."""
    module = tf.Module()
    module.model = model
    concrete = tf.function(model).get_concrete_function(
        tf.TensorSpec(INPUT_SHAPE, tf.float32)
    )
    if variant == "fp32":
        return tflite.convert_float(concrete, module)
    float_ops = () if variant == "int8_all" else tflite.XNNPACK_FLOAT_OPS
    return tflite.quantize_int8(concrete, module, _representative, float_ops=float_ops)


def time_ms(content: bytes, threads: int, repeats: int) -> Dict[str, float]:
    """Median and min of ``repeats`` calls, and the XNNPACK partitions."""
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
    # After delegation every delegated partition is one DELEGATE node.
    partitions = sum(d["op_name"] == "DELEGATE" for d in interpreter._get_ops_details())
    return {
        "median_ms": float(np.median(times)),
        "min_ms": float(np.min(times)),
        "xnnpack_partitions": int(partitions),
    }


def measure(families: Sequence[str], threads: int, repeats: int) -> List[dict]:
    rows = []
    for kind in families:
        model = build_stack(kind)
        row = {"family": kind}
        for variant in VARIANTS:
            row[variant] = time_ms(convert(model, variant), threads, repeats)
        for variant in VARIANTS[1:]:
            row[f"fp32_over_{variant}"] = (
                row["fp32"]["median_ms"] / row[variant]["median_ms"]
            )
        rows.append(row)
        print(f"[int8_op_families] {kind} done", file=sys.stderr, flush=True)
    return rows


def format_table(rows: Sequence[dict]) -> str:
    lines = [
        "| op family (4 blocks, 112x112x32) | fp32 ms, median (min) [partitions] "
        "| int8, all ops | int8, XNNPACK float ops | fp32 / int8 all "
        "| fp32 / int8 |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            f"{row[k]['median_ms']:.2f} ({row[k]['min_ms']:.2f}) "
            f"[{row[k]['xnnpack_partitions']}]"
            for k in VARIANTS
        ]
        lines.append(
            f"| {row['family']} | {' | '.join(cells)} "
            f"| {row['fp32_over_int8_all']:.2f} | {row['fp32_over_int8']:.2f} |"
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
