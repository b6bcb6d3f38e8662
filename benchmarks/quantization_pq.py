"""PQ change of the quantised TFLite exports on a validation set.

    export REMAX_DATA_DIR=/tmp/remax_data
    python benchmarks/quantization_pq.py \\
        --config_file configs/demo/shapes_remax.textproto \\
        --checkpoint runs/demo/model \\
        --output_json benchmarks/results/quantization_pq.json

Builds the config's inference model, restores ``--checkpoint`` (a trained
one: on initial weights the numbers mean nothing; a ckpt-N prefix, a directory
holding a 'checkpoint' file, or the trainer's model_dir), and evaluates on the first
``--num_images`` images of ``eval_dataset_options.file_pattern``:

* ``keras``: :meth:`ServingModule.serve` (the reference; equal to the
  evaluation path and to the SavedModel);
* ``fp32``, ``fp16``, ``dynamic``, ``int8``: the TFLite files of
  :func:`remax_tf.export.tflite.convert_to_tflite` (int8 calibrated on
  ``--calibration_steps`` training images, ``XNNPACK_FLOAT_OPS`` in float as
  the export writes it);
* ``int8_all_ops``: int8 with every op that has an int8 kernel quantised
  (``float_ops=()``, the export before ``XNNPACK_FLOAT_OPS``);
* ``int8_float_decoder``: int8 with the kMaX transformer decoder and the
  prediction head kept in float (``FLOAT_DECODER_SCOPES``, selective
  quantisation of the k-means path, docs/export.md "Selective int8").

Reports PQ / PQ-things / PQ-stuff / mIoU (official-style, as the evaluator
computes them), their change against ``keras``, the fraction of pixels whose
panoptic id equals the Keras one, and the file sizes. TFLite inputs have one
fixed size: the validation images must share one size (shapes_panoptic's do),
which becomes the TFLite input size.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable
from typing import Dict
from typing import Optional
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from remax_tf.benchmarking.harness import model_config  # noqa: E402
from remax_tf.benchmarking.harness import print_report  # noqa: E402

VARIANTS = (
    "keras",
    "fp32",
    "fp16",
    "dynamic",
    "int8",
    "int8_all_ops",
    "int8_float_decoder",
)


def validation_records(config, count: int):
    """(name, uint8 image, int32 panoptic label) of the first ``count``
    validation examples."""
    import tensorflow as tf

    from remax_tf.data import tfrecord
    from remax_tf.data.input_pipeline import list_files

    files = list_files(list(config.eval_dataset_options.file_pattern))
    dataset = tf.data.TFRecordDataset(files).take(count)
    for record in dataset:
        parsed = tfrecord.parse_example(record)
        yield (
            parsed["image_name"].numpy().decode(),
            parsed["image"].numpy(),
            parsed["label"].numpy(),
        )


def _predictors(module, size, variants, representative, calibration_steps):
    """Variant -> (predict(image uint8 [H, W, 3]) -> maps dict, size MB)."""
    from ai_edge_litert.interpreter import Interpreter
    import tensorflow as tf

    from remax_tf.export import tflite

    predictors: Dict[str, tuple] = {}
    if "keras" in variants:
        serve = tf.function(
            module.serve,
            input_signature=[tf.TensorSpec([1, *size, 3], tf.uint8)],
            autograph=False,
        )

        def keras_predict(image):
            return {k: v.numpy()[0] for k, v in serve(image[None]).items()}

        predictors["keras"] = (keras_predict, None)
    modes = {
        "fp32": ("none", {}),
        "fp16": ("fp16", {}),
        "dynamic": ("dynamic", {}),
        "int8": ("int8", {}),
        "int8_all_ops": ("int8", {"float_ops": ()}),
        "int8_float_decoder": (
            "int8",
            {"float_scopes": tflite.FLOAT_DECODER_SCOPES},
        ),
    }
    for variant in variants:
        if variant not in modes:
            continue
        mode, options = modes[variant]
        if mode == "int8":
            options = dict(
                options,
                representative_images=representative,
                calibration_steps=calibration_steps,
            )
        files = tflite.convert_to_tflite(module, size, mode, **options)
        runners = [
            Interpreter(model_content=files[name], num_threads=2).get_signature_runner()
            for name in (tflite.model_file_name(mode), tflite.POSTPROCESS_FILE)
            if name in files
        ]

        def tflite_predict(image, runners=runners):
            outputs = runners[0](image=image[None])
            for runner in runners[1:]:
                outputs = {**outputs, **runner(**outputs)}
            return {k: v[0] for k, v in outputs.items()}

        predictors[variant] = (
            tflite_predict,
            sum(len(c) for c in files.values()) / 1e6,
        )
    return predictors


def evaluate(
    predictors: Dict[str, tuple], records, descriptor
) -> Dict[str, Dict[str, object]]:
    import tensorflow as tf

    from remax_tf import common
    from remax_tf.data import sample_targets
    from remax_tf.evaluation.panoptic_evaluator import PanopticEvaluator

    evaluators = {name: PanopticEvaluator(descriptor) for name in predictors}
    agreement = {name: [] for name in predictors}
    divisor = descriptor.panoptic_label_divisor
    for name, image, label in records:
        _, crowd = sample_targets.crowd_and_thing_masks(
            tf.constant(label), divisor, descriptor.thing_class_ids
        )
        sample = {
            common.GT_PANOPTIC_RAW: label[None],
            common.GT_SEMANTIC_RAW: (label // divisor)[None],
            common.GT_IS_CROWD_RAW: crowd.numpy().astype(np.int32)[None],
            common.IMAGE_NAME: np.array([name]),
        }
        reference = None
        for variant, (predict, _) in predictors.items():
            maps = predict(image)
            prediction = {
                key: maps[key][None]
                for key in (common.PRED_PANOPTIC_KEY, common.PRED_SEMANTIC_KEY)
            }
            evaluators[variant].update(sample, prediction)
            panoptic = maps[common.PRED_PANOPTIC_KEY]
            if reference is None:
                reference = panoptic
            agreement[variant].append(float(np.mean(panoptic == reference)))
    results = {}
    for variant, evaluator in evaluators.items():
        metrics = evaluator.result()
        results[variant] = {
            key: metrics[key]
            for key in ("pq", "pq_things", "pq_stuff", "miou", "num_images")
            if key in metrics
        }
        results[variant]["panoptic_pixel_agreement"] = float(
            np.mean(agreement[variant])
        )
        results[variant]["size_mb"] = predictors[variant][1]
    return results


def format_table(results: Dict[str, Dict[str, object]], reference: str) -> str:
    lines = [
        "| variant | size (MB) | PQ | ΔPQ | PQ things | PQ stuff | mIoU | pixels = ref |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = results.get(reference, {}).get("pq")
    for variant, r in results.items():
        delta = "" if base is None else f"{100 * (r['pq'] - base):+.2f}"
        size = "-" if r["size_mb"] is None else f"{r['size_mb']:.1f}"
        lines.append(
            f"| {variant} | {size} | {100 * r['pq']:.2f} | {delta} | "
            f"{100 * r['pq_things']:.2f} | {100 * r['pq_stuff']:.2f} | "
            f"{100 * r['miou']:.2f} | {100 * r['panoptic_pixel_agreement']:.1f}% |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_file", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--num_images", type=int, default=200)
    parser.add_argument("--calibration_steps", type=int, default=100)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"Comma-separated subset of {', '.join(VARIANTS)} (keras first).",
    )
    parser.add_argument("--config_override", action="append", default=[])
    parser.add_argument("--output_json")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}.")

    import tensorflow as tf

    from remax_tf.export.exporter import training_images
    from remax_tf.export.saved_model import build_serving_module
    from remax_tf.export.saved_model import eval_preprocess_config
    from remax_tf.export.saved_model import export_descriptor
    from remax_tf.inference.model_files import find_checkpoint
    from remax_tf.model import build_model
    from remax_tf.model.checkpoint_restore import restore_items

    config = model_config(args.config_file, args.config_override)
    descriptor = export_descriptor(config)
    model = build_model(config, descriptor)
    crop = eval_preprocess_config(config, descriptor).crop_size
    model(tf.zeros([1, *crop, 3]), training=False)
    checkpoint = find_checkpoint(
        args.checkpoint, config.experiment_name, "--checkpoint"
    )
    report = restore_items(model.checkpoint_items, checkpoint, what="--checkpoint")
    if report.missing:
        raise SystemExit(f"--checkpoint lacks model variables: {report.summary()}")
    records = list(validation_records(config, args.num_images))
    sizes = {image.shape[:2] for _, image, _ in records}
    if len(sizes) != 1:
        raise SystemExit(
            f"validation images have {len(sizes)} sizes {sorted(sizes)[:5]}; TFLite "
            "files take one fixed size, so this benchmark needs a dataset of "
            "same-sized images (shapes_panoptic)."
        )
    size = sizes.pop()
    module = build_serving_module(config, model, descriptor)
    representative: Callable = training_images(config, size)
    predictors = _predictors(
        module, size, variants, representative, args.calibration_steps
    )
    results = evaluate(predictors, records, descriptor)
    output = {
        "config": args.config_file,
        "checkpoint": report.checkpoint,
        "input_size": list(size),
        "num_images": len(records),
        "calibration_steps": args.calibration_steps,
        "results": results,
    }
    print_report(format_table(results, variants[0]), output, args.output_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
