"""Batch-1 CPU latency and size of the exported models, split into parts
(pre-processing, network, post-processing, undo; results in docs/benchmarks.md).

    python benchmarks/latency.py \\
        --config_file configs/coco/remax_t.textproto --crop 641 \\
        --variants saved_model,tflite_fp32,tflite_int8 --threads 1,2,4 \\
        --output_json benchmarks/results/latency.json

For every config, at its evaluation crop (or ``--crop``), one uint8 image of
that size goes through the whole serving pipeline (evaluation resize/pad,
model, mask-wise post-processing, undo) in each variant:

* ``keras``: :meth:`ServingModule.serve` as a ``tf.function`` (no XLA);
* ``saved_model``: the exported SavedModel's ``serving_default``, reloaded;
* ``tflite_fp32``, ``tflite_fp16``, ``tflite_dynamic``, ``tflite_int8``: the
  TFLite files in ``ai_edge_litert``'s interpreter (XNNPACK delegate; int8's
  one file joins the int8 network and the float post-processing);
* ``tflite_int8_float_decoder``: int8 with the kMaX transformer decoder and
  the prediction head in float (``tflite.FLOAT_DECODER_SCOPES``, the export's
  ``--float_scopes``).

``total`` is that whole call. Unless ``--no_split``, the same pipeline cut in
four parts is timed too, each part traced on its own: ``pre`` (uint8 image ->
padded float crop), ``network`` (crop -> raw logits), ``post`` (mask-wise
post-processing at the crop size) and ``undo`` (back to the input size). For
TensorFlow variants the parts are ``tf.function`` s of the serving module's
pieces; for TFLite ones separate files converted the same way (the network
file with the variant's quantisation, the others fp32). Parts are fed the
outputs of the previous part on the same image.

Every figure is the median and the minimum of ``--repeats`` calls after
``--warmup`` calls, at each of ``--threads`` (TFLite: interpreters of this
process; TensorFlow: this process at the first count, child processes at the
others, since its thread pools are fixed at start-up).

Weights: the initial ones unless ``--checkpoint``; the post-processing only
visits slots whose class confidence passes the thresholds, so the
class head is scaled by ``--class_head_scale`` to make slots pass, and the
JSON records how many did (``num_candidate_slots``). int8 calibrates on
``--calibration_steps`` random images. Sizes: the SavedModel directory and
each TFLite file, in MB (10^6 bytes); the JSON also lists each TFLite file's
op types. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import os
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

from remax_tf.benchmarking.harness import model_config  # noqa: E402
from remax_tf.benchmarking.harness import print_report  # noqa: E402
from remax_tf.benchmarking.harness import run_isolated  # noqa: E402

VARIANTS = (
    "keras",
    "saved_model",
    "tflite_fp32",
    "tflite_fp16",
    "tflite_dynamic",
    "tflite_int8",
    "tflite_int8_float_decoder",
)
_TFLITE_MODES = {
    "tflite_fp32": "none",
    "tflite_fp16": "fp16",
    "tflite_dynamic": "dynamic",
    "tflite_int8": "int8",
    "tflite_int8_float_decoder": "int8",
}
# int8 with the k-means path (transformer decoder and head) in float: the
# export's --float_scopes of docs/export.md "Selective int8".
_FLOAT_DECODER = "tflite_int8_float_decoder"


def _crop_overrides(crop: Optional[int]) -> List[str]:
    from remax_tf.config.small_crop import crop_overrides

    return crop_overrides(crop) if crop else []


def _times_ms(call: Callable[[], object], warmup: int, repeats: int) -> List[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000.0 * (time.perf_counter() - start))
    return times


def _directory_mb(path: str) -> float:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 1e6


def _class_head_scaled(model, scale: float) -> None:
    """Multiplies the class head's kernel by ``scale`` (initial weights give
    every slot a near-uniform class distribution, so no slot would pass the
    mask-wise thresholds and the post-processing loop would not run; the
    export tests scale it the same way)."""
    from remax_tf import common

    kernel = model.checkpoint_items[common.CKPT_TRANSFORMER_CLASS_HEAD].weights[0]
    kernel.assign(kernel * scale)


def _num_candidates(post_processor, class_logits: np.ndarray) -> int:
    """How many slots pass the mask-wise class thresholds (the loop count)."""
    from remax_tf.postprocess.slot_predictions import class_predictions

    index, confidence = (np.asarray(t) for t in class_predictions(class_logits))
    threshold = np.where(
        index < post_processor.num_thing_classes,
        post_processor.thing_threshold,
        post_processor.stuff_threshold,
    )
    return int((confidence >= threshold).sum())


class _Pieces:
    """The serving pipeline cut in four: ``pre`` (uint8 image -> padded float
    crop), ``network`` (crop -> raw logits), ``post`` (logits -> maps at the
    crop size), ``undo`` (maps -> input size); traced at a fixed size."""

    def __init__(self, module, model, post_processor, size):
        import tensorflow as tf

        from remax_tf.data import preprocessing
        from remax_tf.export.saved_model import RAW_OUTPUT_KEYS
        from remax_tf.postprocess import undo_preprocessing
        from remax_tf.postprocess.undo_preprocessing import MAP_KEYS

        height, width = size
        self.module = module
        image_spec = tf.TensorSpec([1, height, width, 3], tf.uint8, "image")
        crop_spec = tf.TensorSpec([1, height, width, 3], tf.float32, "crop")
        _, _, resized = preprocessing.preprocess_for_eval(
            tf.zeros([height, width, 3], tf.uint8), None, module.preprocess_config, 0
        )
        resized_size = tf.constant(resized.shape[:2].as_list(), tf.int32)

        def pre(image):
            padded, _, _ = preprocessing.preprocess_for_eval(
                image[0], None, module.preprocess_config, label_pad_value=0
            )
            return {"crop": padded[tf.newaxis]}

        def network(crop):
            outputs = model(crop, training=False)
            return {key: tf.cast(outputs[key], tf.float32) for key in RAW_OUTPUT_KEYS}

        def post(raw):
            maps = post_processor(raw)
            return {key: tf.cast(maps[key], tf.float32) for key in MAP_KEYS}

        def undo(maps):
            return undo_preprocessing(maps, resized_size, tf.constant([height, width]))

        def trace(function, spec):
            return tf.function(
                function, input_signature=[spec], autograph=False
            ).get_concrete_function()

        self.pre = trace(pre, image_spec)
        self.network = trace(network, crop_spec)
        raw_specs = {
            key: tf.TensorSpec(
                self.network.structured_outputs[key].shape, tf.float32, key
            )
            for key in RAW_OUTPUT_KEYS
        }
        self.post = trace(post, raw_specs)
        map_specs = {
            key: tf.TensorSpec([1, height, width], tf.float32, key) for key in MAP_KEYS
        }
        self.undo = trace(undo, map_specs)


def _convert_piece(
    concrete, module, quantize: str, calibration=None, float_scopes=()
) -> bytes:
    """One piece as a TFLite flatbuffer, converted as the export converts
    (builtin ops only; ``int8``: full integer with float fallback and
    ``XNNPACK_FLOAT_OPS`` in float)."""
    from remax_tf.export import tflite

    if quantize == "int8":
        return tflite.quantize_int8(
            concrete, module, lambda: ([c] for c in calibration), float_scopes
        )
    return tflite.convert_float(concrete, module, quantize)


def _lite_runner(content: bytes, threads: int):
    """Callable(dict of arrays) -> dict of arrays, inputs matched by name."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()

    def input_key(detail, feed):
        name = detail["name"]
        for key in feed:
            if key in name:
                return key
        if len(feed) == 1:
            return next(iter(feed))
        raise KeyError(f"no feed for TFLite input {name!r} among {sorted(feed)}")

    def run(feed):
        for detail in inputs:
            interpreter.set_tensor(detail["index"], feed[input_key(detail, feed)])
        interpreter.invoke()
        return {d["name"]: interpreter.get_tensor(d["index"]) for d in outputs}

    return run, outputs


def _named_outputs(result: Dict[str, np.ndarray], keys: Sequence[str]):
    """TFLite output tensor names -> our keys (``StatefulPartitionedCall:0``
    style names are mapped by the flattened, sorted key order)."""
    names = sorted(result)
    if all(any(k in n for n in names) for k in keys):
        return {k: next(result[n] for n in names if k in n) for k in keys}

    def index(name):
        tail = name.rsplit(":", 1)
        return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0

    ordered = sorted(names, key=index)
    return dict(zip(sorted(keys), (result[n] for n in ordered)))


class _Timer:
    """Times the variants of one config on one image and records the
    medians and minima in ``result["latency"]``: variant -> threads ->
    {"total"|"pre"|"network"|"post"|"undo": {"median_ms", "min_ms"}}."""

    def __init__(self, pieces, image, result, warmup: int, repeats: int, split: bool):
        import tensorflow as tf

        self.pieces = pieces
        self.image = image
        self.batch = image[None]
        self.result = result
        self.warmup = warmup
        self.repeats = repeats
        self.split = split
        # The split's inputs: each piece is timed on its predecessor's output.
        self.crop_in = pieces.pre(tf.constant(self.batch))["crop"]
        self.raw_in = pieces.network(self.crop_in)
        self.maps_in = pieces.post(self.raw_in)

    def record(self, variant: str, thread_count: int, part: str, call) -> None:
        times = _times_ms(call, self.warmup, self.repeats)
        entry = (
            self.result["latency"]
            .setdefault(variant, {})
            .setdefault(str(thread_count), {})
        )
        entry[part] = {"median_ms": statistics.median(times), "min_ms": min(times)}

    def time_tf(self, variant: str, thread_count: int, total_call) -> None:
        """A TensorFlow variant: the whole call, then the pieces."""
        import tensorflow as tf

        self.record(variant, thread_count, "total", total_call)
        if not self.split:
            return
        pieces, batch = self.pieces, self.batch
        for part, call in (
            ("pre", lambda: pieces.pre(tf.constant(batch))["crop"].numpy()),
            (
                "network",
                lambda: [v.numpy() for v in pieces.network(self.crop_in).values()],
            ),
            ("post", lambda: [v.numpy() for v in pieces.post(self.raw_in).values()]),
            ("undo", lambda: [v.numpy() for v in pieces.undo(self.maps_in).values()]),
        ):
            self.record(variant, thread_count, part, call)

    def time_tflite(
        self, variant: str, files, mode: str, thread_count: int, piece_files
    ) -> None:
        """A TFLite variant's file (``image`` in, maps out), then,
        with the split, its pieces (``piece_files``: pre, network, post,
        undo) on the TensorFlow pieces' outputs."""
        from ai_edge_litert.interpreter import Interpreter

        from remax_tf.export import tflite
        from remax_tf.export.saved_model import RAW_OUTPUT_KEYS
        from remax_tf.postprocess.undo_preprocessing import MAP_KEYS

        runner = Interpreter(
            model_content=files[tflite.model_file_name(mode)],
            num_threads=thread_count,
        ).get_signature_runner()
        batch = self.batch

        def tflite_call():
            return runner(image=batch)

        self.record(variant, thread_count, "total", tflite_call)
        if not self.split:
            return
        pre_run, _ = _lite_runner(piece_files["pre"], thread_count)
        net_run, _ = _lite_runner(piece_files["network"], thread_count)
        post_run, _ = _lite_runner(piece_files["post"], thread_count)
        undo_run, _ = _lite_runner(piece_files["undo"], thread_count)
        crop_np = self.crop_in.numpy()
        raw_np = _named_outputs(net_run({"crop": crop_np}), RAW_OUTPUT_KEYS)
        maps_np = _named_outputs(post_run(raw_np), MAP_KEYS)
        for part, call in (
            ("pre", lambda: pre_run({"image": batch})),
            ("network", lambda: net_run({"crop": crop_np})),
            ("post", lambda: post_run(raw_np)),
            ("undo", lambda: undo_run(maps_np)),
        ):
            self.record(variant, thread_count, part, call)


def _serving_pieces(
    config_file: str,
    crop: Optional[int],
    overrides: Sequence[str],
    checkpoint: Optional[str],
    class_head_scale: float,
):
    """(config, input size, model, serving module, post-processor, pieces)
    of ``config_file``: initial weights (class head scaled) or the
    checkpoint's."""
    import tensorflow as tf

    from remax_tf.export.saved_model import build_serving_module
    from remax_tf.export.saved_model import eval_preprocess_config
    from remax_tf.export.saved_model import export_descriptor
    from remax_tf.model import build_model
    from remax_tf.model.checkpoint_restore import restore_items
    from remax_tf.postprocess import build_post_processor

    config = model_config(config_file, _crop_overrides(crop) + list(overrides))
    descriptor = export_descriptor(config)
    size = tuple(eval_preprocess_config(config, descriptor).crop_size)
    model = build_model(config, descriptor)
    model(tf.zeros([1, *size, 3]), training=False)
    if checkpoint:
        restore_items(model.checkpoint_items, checkpoint, what="--checkpoint")
    elif class_head_scale and class_head_scale != 1.0:
        _class_head_scaled(model, class_head_scale)
    module = build_serving_module(config, model, descriptor)
    post_processor = build_post_processor(config.evaluator_options, descriptor, size)
    pieces = _Pieces(module, model, post_processor, size)
    return config, size, model, module, post_processor, pieces


def _time_tf_variants(timer: _Timer, variants, module, size, workdir, threads):
    """The keras and saved_model variants, at TensorFlow's thread count."""
    import tensorflow as tf

    from remax_tf.export.saved_model import export_saved_model

    if "keras" in variants:
        serve = tf.function(
            module.serve,
            input_signature=[tf.TensorSpec([1, *size, 3], tf.uint8)],
            autograph=False,
        )
        single_batch = tf.constant(timer.batch)
        timer.time_tf(
            "keras", threads, lambda: [v.numpy() for v in serve(single_batch).values()]
        )
    if "saved_model" in variants:
        path = export_saved_model(module, workdir)
        timer.result["size_mb"]["saved_model"] = _directory_mb(path)
        signature = tf.saved_model.load(path).signatures["serving_default"]
        single = tf.constant(timer.image)
        timer.time_tf(
            "saved_model",
            threads,
            lambda: [v.numpy() for v in signature(image=single).values()],
        )


def _convert_variant(variant: str, module, model, size, calibration) -> dict:
    """The TFLite files of ``variant`` ({file name: content})."""
    from remax_tf.export import tflite

    mode = _TFLITE_MODES[variant]
    options = {}
    if mode == "int8":
        options = dict(
            representative_images=lambda: iter(calibration),
            calibration_steps=len(calibration),
            float_scopes=_float_scopes(variant),
        )
    return tflite.convert_to_tflite(module, size, mode, **options)


def _float_scopes(variant: str) -> tuple:
    from remax_tf.export import tflite

    return tflite.FLOAT_DECODER_SCOPES if variant == _FLOAT_DECODER else ()


def _time_tflite_variants(
    timer: _Timer, variants, module, model, size, threads, rng, calibration_steps
):
    """The TFLite variants (their sizes and op lists too), at each thread count."""
    import tensorflow as tf

    from remax_tf.export import tflite

    pieces, result = timer.pieces, timer.result
    lite_variants = [v for v in variants if v in _TFLITE_MODES]
    piece_files = {}
    if timer.split and lite_variants:
        for part in ("pre", "post", "undo"):
            piece_files[part] = _convert_piece(getattr(pieces, part), module, "none")
    calibration = [
        rng.integers(0, 256, [*size, 3], dtype=np.uint8)
        for _ in range(calibration_steps)
    ]
    for variant in lite_variants:
        mode = _TFLITE_MODES[variant]
        files = _convert_variant(variant, module, model, size, calibration)
        result["size_mb"][variant] = sum(len(c) for c in files.values()) / 1e6
        result["tflite_ops"][variant] = {
            name: tflite.op_types(content) for name, content in files.items()
        }
        if timer.split:
            crops = [
                pieces.pre(tf.constant(c[None]))["crop"].numpy() for c in calibration
            ]
            piece_files["network"] = _convert_piece(
                pieces.network, module, mode, crops, _float_scopes(variant)
            )
        for thread_count in threads:
            timer.time_tflite(variant, files, mode, thread_count, piece_files)


def benchmark_config(
    config_file: str,
    variants: Sequence[str],
    crop: Optional[int],
    threads: Sequence[int],
    warmup: int,
    repeats: int,
    checkpoint: Optional[str],
    calibration_steps: int,
    class_head_scale: float = 300.0,
    split: bool = True,
    overrides: Sequence[str] = (),
) -> Dict[str, object]:
    config, size, model, module, post_processor, pieces = _serving_pieces(
        config_file, crop, overrides, checkpoint, class_head_scale
    )
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, [*size, 3], dtype=np.uint8)
    result: Dict[str, object] = {
        "config": config_file,
        "config_overrides": list(overrides),
        "backbone": config.model_options.backbone.name,
        "input_size": list(size),
        "num_slots": None,  # filled in below, from the network's output
        "num_candidate_slots": None,
        "weights": checkpoint or f"initial, class head x{class_head_scale:g}",
        "num_inference_parameters": int(
            sum(v.shape.num_elements() for v in module.inference_variables)
        ),
        # variant -> threads -> {"total"|"pre"|"network"|"post"|"undo":
        #                        {"median_ms", "min_ms"}}
        "latency": {},
        "size_mb": {},
        "tflite_ops": {},
    }
    timer = _Timer(pieces, image, result, warmup, repeats, split)
    class_logits = timer.raw_in["transformer_class_logits"]
    result["num_slots"] = int(class_logits.shape[1])
    result["num_candidate_slots"] = _num_candidates(
        post_processor, class_logits.numpy()
    )
    with tempfile.TemporaryDirectory() as workdir:
        _time_tf_variants(timer, variants, module, size, workdir, threads[0])
        _time_tflite_variants(
            timer, variants, module, model, size, threads, rng, calibration_steps
        )
    return result


_PARTS = ("total", "pre", "network", "post", "undo")


def format_table(results: Sequence[Dict[str, object]]) -> str:
    """Markdown table: per model, variant and thread count, the median (min)
    of each part in ms and total / network."""
    lines = [
        "| model | input | candidates | variant | threads | total | pre | network "
        "| post | undo | total / network | size (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        name = os.path.basename(str(result["config"])).replace(".textproto", "")
        if result.get("config_overrides"):
            name += " (" + ", ".join(result["config_overrides"]) + ")"
        size = "x".join(str(s) for s in result["input_size"])
        candidates = f"{result['num_candidate_slots']}/{result['num_slots']}"
        for variant, per_threads in result["latency"].items():
            mb = result["size_mb"].get(variant)
            mb_text = f"{mb:.1f}" if mb is not None else "-"
            for thread_count, parts in sorted(
                per_threads.items(), key=lambda item: int(item[0])
            ):
                cells = []
                for part in _PARTS:
                    if part in parts:
                        cells.append(
                            f"{parts[part]['median_ms']:.0f} "
                            f"({parts[part]['min_ms']:.0f})"
                        )
                    else:
                        cells.append("-")
                ratio = "-"
                if "network" in parts:
                    ratio = f"{parts['total']['median_ms'] / parts['network']['median_ms']:.2f}"
                lines.append(
                    f"| {name} | {size} | {candidates} | {variant} | {thread_count} | "
                    + " | ".join(cells)
                    + f" | {ratio} | {mb_text} |"
                )
    return "\n".join(lines)


def _tf_thread_runs(args, config_file: str, thread_count: int) -> Dict[str, object]:
    """TensorFlow's thread pools are fixed once it starts, so the keras and
    saved_model variants at another thread count run in a fresh process
    (``run_isolated``, same settings); returns its result for ``config_file``."""
    tf_variants = [v for v in args.variants_list if v not in _TFLITE_MODES]
    return run_isolated(
        _tf_run_at,
        thread_count,
        **_run_settings(args, config_file, [thread_count], tf_variants),
    )


def _run_settings(args, config_file: str, threads, variants) -> Dict[str, object]:
    """The keyword arguments of :func:`benchmark_config` for one config."""
    return dict(
        config_file=config_file,
        variants=variants,
        crop=args.crop,
        threads=threads,
        warmup=args.warmup,
        repeats=args.repeats,
        checkpoint=args.checkpoint,
        calibration_steps=args.calibration_steps,
        class_head_scale=args.class_head_scale,
        split=not args.no_split,
        overrides=args.config_override,
    )


def _tf_run_at(thread_count: int, *args, **kwargs) -> Dict[str, object]:
    """``benchmark_config(*args, **kwargs)`` with TensorFlow's thread pools
    set to ``thread_count`` (in a process where TensorFlow has not run yet)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(thread_count)
    tf.config.threading.set_inter_op_parallelism_threads(thread_count)
    return benchmark_config(*args, **kwargs)


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
    parser.add_argument(
        "--threads",
        default="2",
        help="Comma-separated thread counts, e.g. 1,2,4 (TFLite interpreters "
        "in this process; TensorFlow at the first count here, the others in "
        "child processes).",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--checkpoint", help="Optional checkpoint (one config only).")
    parser.add_argument(
        "--class_head_scale",
        type=float,
        default=300.0,
        help="Without --checkpoint: multiply the class head's initial kernel "
        "by this so that slots pass the mask-wise thresholds (1: untouched, "
        "then no slot passes and the post-processing loop never runs).",
    )
    parser.add_argument("--calibration_steps", type=int, default=8)
    parser.add_argument(
        "--no_split",
        action="store_true",
        help="Time only the whole pipeline, not pre/network/post/undo.",
    )
    parser.add_argument(
        "--config_override",
        action="append",
        default=[],
        help="field.path=value applied to every config, as the trainer's flag, "
        "e.g. evaluator_options.post_processing_resolution=model_output.",
    )
    parser.add_argument("--output_json", help="Also write the results here.")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}.")
    if args.checkpoint and len(args.config_file) != 1:
        parser.error("--checkpoint needs exactly one --config_file.")
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads or min(threads) < 1:
        parser.error("--threads must list positive thread counts.")
    args.variants_list = variants

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads[0])
    tf.config.threading.set_inter_op_parallelism_threads(threads[0])
    results = []
    for config_file in args.config_file:
        result = benchmark_config(**_run_settings(args, config_file, threads, variants))
        if any(v not in _TFLITE_MODES for v in variants):
            for thread_count in threads[1:]:
                child = _tf_thread_runs(args, config_file, thread_count)
                for variant, per_threads in child["latency"].items():
                    result["latency"].setdefault(variant, {}).update(per_threads)
        results.append(result)
    report = {
        "threads": threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "load_average": list(os.getloadavg()),
        "results": results,
    }
    print_report(format_table(results), report, args.output_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
