"""The embedded demo: no download, everything generated here.

    remax-demo --output_dir runs/demo        # or: python -m remax_tf.demo

1. generates ``shapes_panoptic_v2`` (1000 train + 200 val images, DeepLab2
   TFRecords; 20 thing classes, see docs/datasets.md) under
   ``<output_dir>/data/shapes_panoptic_v2``, and pre-trains the MobileNetV3-
   Small backbone on single-object crops of its classes (cached in
   ``<output_dir>/data/pretrained``), as a user starts from ImageNet weights;
2. trains ``configs/demo/shapes_v2_remax.textproto`` (shipped with the
   package) from that backbone and evaluates it on the validation images (the trainer's
   ``--mode train_and_eval``, in process), writing checkpoints, TensorBoard
   summaries and ``eval/metrics_latest.json`` under
   ``<output_dir>/model/shapes_v2_remax``;
3. exports the trained model (SavedModel, and TFLite since the backbone is a
   MobileNetV3) to ``<output_dir>/model/shapes_v2_remax/export``;
4. runs the exported SavedModel on a few validation images and draws
   ``<output_dir>/demo_predictions.png`` (image | ground truth | prediction).

A smoke run of the whole path (about two minutes on 2 CPU cores):
``--num_steps 20 --num_train 32 --num_val 8``. ``--config_override``
(repeatable) changes any other field of the config.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

from remax_tf import cli

# TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at its import by the modules below.
cli.quiet_tensorflow()

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from remax_tf import atomic  # noqa: E402
from remax_tf import common  # noqa: E402
from remax_tf import visualization  # noqa: E402
from remax_tf.config import load_config  # noqa: E402
from remax_tf.config import validate_config  # noqa: E402
from remax_tf.config.errors import ConfigError  # noqa: E402
from remax_tf.data import datasets  # noqa: E402
from remax_tf.data import shapes  # noqa: E402
from remax_tf.data import tfrecord  # noqa: E402
from remax_tf.inference.predictor import load_predictor  # noqa: E402
from remax_tf.training import pretrain_backbone  # noqa: E402
from remax_tf.training import train_lib  # noqa: E402
from remax_tf.training.distribution import disable_grappler_if_asked  # noqa: E402
from remax_tf.training.errors import ConfigChangedError  # noqa: E402
from remax_tf.training.errors import TrainingSetupError  # noqa: E402

# Resolved by load_config: this file relative to the working directory, else
# the copy shipped in the package (remax_tf.configs).
DEMO_CONFIG = "configs/demo/shapes_v2_remax.textproto"
# Steps of the backbone pre-training the demo runs before training (cached in
# <output_dir>/data/pretrained; remax_tf.training.pretrain_backbone): about 4
# of the demo's minutes. Measured crop accuracy at 5e-3: 89.5% after 1500
# steps, 95.1% after 2500 (docs/benchmarks.md, "The demo's targets").
DEFAULT_PRETRAIN_STEPS = 2500
DEFAULT_OUTPUT_DIR = "runs/demo"
DEFAULT_NUM_TRAIN = 1000
DEFAULT_NUM_VAL = 200
NUM_PICTURES = 4
# Width of each panel of the picture (the 129-pixel images are enlarged).
PICTURE_PANEL_WIDTH = 384


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="remax-demo",
        description="The embedded remax_tf demo on the synthetic shapes_panoptic_v2 "
        "dataset: generate the data, train, evaluate, export (SavedModel, TFLite) "
        "and draw predictions (also python -m remax_tf.demo). Quick smoke run: "
        "--num_steps 20 --num_train 32 --num_val 8.",
    )
    parser.add_argument(
        "--output_dir",
        default=DEFAULT_OUTPUT_DIR,
        help="where data/, model/<experiment_name>/ and the picture go "
        f"(default: {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--config_file",
        default=DEMO_CONFIG,
        help=f"experiment textproto (default: {DEMO_CONFIG}, shipped with the package)",
    )
    parser.add_argument(
        "--config_override",
        action="append",
        default=[],
        help="field.path=value applied to the config (repeatable)",
    )
    parser.add_argument(
        "--num_steps",
        type=_positive,
        default=None,
        help="training steps (default: the config's, 1300); also caps the "
        "warm-up at a tenth of them",
    )
    parser.add_argument(
        "--pretrain_steps",
        type=_positive,
        default=None,
        help="backbone pre-training steps when the config's "
        "initial_checkpoint lies under <output_dir>/data and does not "
        f"exist yet (default: {DEFAULT_PRETRAIN_STEPS}; with --num_steps, "
        "the same number)",
    )
    parser.add_argument(
        "--num_train",
        type=_positive,
        default=DEFAULT_NUM_TRAIN,
        help=f"training images to generate (default: {DEFAULT_NUM_TRAIN})",
    )
    parser.add_argument(
        "--num_val",
        type=_positive,
        default=DEFAULT_NUM_VAL,
        help=f"validation images to generate and evaluate on (default: "
        f"{DEFAULT_NUM_VAL})",
    )
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def set_num_steps(config, num_steps: Optional[int]) -> None:
    """``--num_steps``: the training length, with the warm-up capped at a
    tenth of it (the demo config's 100 steps would outlast a smoke run)."""
    if num_steps is None:
        return
    solver = config.trainer_options.solver_options
    solver.training_number_of_steps = num_steps
    solver.warmup_steps = min(solver.warmup_steps, num_steps // 10)


def demo_dataset(config_file: str, overrides: Sequence[str], data_root: str):
    """(dataset name, pre-trained backbone path) of the demo config."""
    environ = dict(os.environ, REMAX_DATA_DIR=data_root)
    config = load_config(config_file, overrides, environ=environ, validate=False)
    return (
        config.train_dataset_options.dataset,
        config.model_options.initial_checkpoint,
    )


def build_data(
    output_dir: str, num_train: int, num_val: int, dataset: Optional[str] = None
) -> str:
    """Generates the shapes dataset ``dataset`` (a ``shapes.PRESETS`` name;
    default: the demo's) under ``<output_dir>/data/<dataset>``; returns
    ``<output_dir>/data``."""
    dataset = dataset or shapes.V2.dataset
    if dataset not in shapes.PRESETS:
        raise ConfigError(
            f"the demo generates {', '.join(shapes.PRESETS)}; the config "
            f"trains on {dataset!r}. Use python -m remax_tf.train for other data."
        )
    data_root = os.path.join(output_dir, "data")
    data_dir = os.path.join(data_root, dataset)
    start = time.time()
    shapes.generate(
        data_dir, num_train=num_train, num_val=num_val, config=shapes.PRESETS[dataset]
    )
    print(
        f"[demo] {dataset}: {num_train} train + {num_val} val images in "
        f"{data_dir} ({time.time() - start:.1f} s)",
        flush=True,
    )
    labels = [
        r["label"]
        for r in tfrecord.read_examples(os.path.join(data_dir, "val-*.tfrecord"))
    ]
    print(
        "[demo] validation-set statistics: "
        + json.dumps(shapes.label_statistics(labels, dataset)),
        flush=True,
    )
    return data_root


def pretrain(data_root: str, dataset: str, weights: str, steps: int) -> None:
    """Pre-trains the backbone into ``weights`` (cached) when the config's
    ``initial_checkpoint`` lies under ``data_root``, as a user would start
    from ImageNet weights (remax_tf.training.pretrain_backbone)."""
    if not weights or not os.path.abspath(weights).startswith(
        os.path.abspath(data_root) + os.sep
    ):
        return
    request = pretrain_backbone.PretrainRequest(
        dataset=dataset,
        steps=steps,
        # A smoke run renders fewer crops.
        num_images=min(pretrain_backbone.PretrainRequest.num_images, steps * 16),
        num_val_images=min(pretrain_backbone.PretrainRequest.num_val_images, steps * 4),
    )
    record = pretrain_backbone.pretrain(request, weights)
    print(
        f"[demo] pre-trained backbone: {record['checkpoint']} (crop accuracy "
        f"{100 * record['val_accuracy']:.1f}%)",
        flush=True,
    )


def train_and_export(
    config_file: str,
    data_root: str,
    model_dir: str,
    overrides: Sequence[str],
    num_steps: Optional[int] = None,
) -> Dict[str, object]:
    """Trains, evaluates and exports; returns run_experiment's result."""
    environ = dict(os.environ, REMAX_DATA_DIR=data_root)
    config = load_config(
        config_file,
        ["trainer_options.export_at_end=true", *overrides],
        environ=environ,
        validate=False,
    )
    set_num_steps(config, num_steps)
    validate_config(config, config_file)
    try:
        return train_lib.run_experiment("train_and_eval", config, model_dir)
    except ConfigChangedError as e:
        # The trainer's fix names trainer flags; the demo's is another folder.
        changed = ", ".join(field for field, _, _ in e.changes)
        raise TrainingSetupError(
            f"{model_dir} holds a demo model trained with other settings "
            f"({changed}); the demo does not resume a different run. Fix: use a "
            f"fresh --output_dir, or delete {model_dir} to retrain in this one."
        ) from e


def draw_predictions(
    data_root: str, export_dir: str, output_dir: str, dataset: str
) -> str:
    """Predicts a few validation images with the exported SavedModel and
    draws image | ground truth | prediction rows; returns the PNG path.
    The images are also saved to ``<output_dir>/val_images``."""
    descriptor = datasets.get_dataset_descriptor(dataset)
    predictor = load_predictor(os.path.join(export_dir, "saved_model"))
    records = tfrecord.read_examples(os.path.join(data_root, dataset, "val-*.tfrecord"))
    sample_dir = os.path.join(output_dir, "val_images")
    os.makedirs(sample_dir, exist_ok=True)
    rows: List[np.ndarray] = []
    for record in records[:NUM_PICTURES]:
        name = record["image_name"].decode()
        image = record["image"]
        Image.fromarray(image).save(os.path.join(sample_dir, f"{name}.png"))
        predicted = predictor(image)[common.PRED_PANOPTIC_KEY]
        factor = -(-PICTURE_PANEL_WIDTH // image.shape[1])
        rows.append(
            visualization.side_by_side(
                image.repeat(factor, 0).repeat(factor, 1),
                visualization.overlay(
                    image, record["label"], descriptor, min_width=PICTURE_PANEL_WIDTH
                ),
                visualization.overlay(
                    image, predicted, descriptor, min_width=PICTURE_PANEL_WIDTH
                ),
            )
        )
    path = os.path.join(output_dir, "demo_predictions.png")
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    picture = np.concatenate([p for row in rows for p in (row, gap)][:-1], axis=0)
    visualization.save_png(path, picture)
    return path


def report(
    result: Dict[str, object], picture: str, output_dir: str, seconds: float
) -> None:
    """Prints the metrics and where every output is."""
    workdir = result["model_dir"]
    export_dir = os.path.join(workdir, "export")
    metrics = result.get("metrics") or {}
    print(f"\n[demo] finished in {seconds / 60:.1f} min")
    if metrics:
        print(
            f"[demo] validation ({metrics['num_images']} images): "
            f"PQ {100 * metrics['pq']:.1f}, SQ {100 * metrics['sq']:.1f}, "
            f"RQ {100 * metrics['rq']:.1f}, "
            f"PQ things {100 * metrics['pq_things']:.1f} (class-agnostic "
            f"{100 * metrics.get('pq_things_class_agnostic', float('nan')):.1f}), "
            f"PQ stuff {100 * metrics['pq_stuff']:.1f}, mIoU {100 * metrics['miou']:.1f}"
        )
        if metrics.get("thing_label_accuracy") is not None:
            confusions = ", ".join(
                f"{c['ground_truth']} as {c['predicted']} ({c['count']})"
                for c in metrics["thing_label_confusions"][:3]
            )
            print(
                f"[demo] things found (mask IoU > 0.5, any label): "
                f"{metrics['things_found']} of {metrics['things']}; labelled right: "
                f"{100 * metrics['thing_label_accuracy']:.1f}%; most confused: "
                f"{confusions or 'none'}"
            )
    print(
        f"[demo] checkpoints and TensorBoard summaries: {workdir}  "
        f"(tensorboard --logdir {workdir})"
    )
    print(f"[demo] metrics: {os.path.join(workdir, 'eval', 'metrics_latest.json')}")
    print(f"[demo] exported model (SavedModel, TFLite): {export_dir}")
    print(f"[demo] visualisation: {picture}")
    print(
        f"[demo] predict your own images: python -m remax_tf.predict --model "
        f"{export_dir} --images {os.path.join(output_dir, 'val_images')} "
        f"--output_dir {os.path.join(output_dir, 'predictions')}",
        flush=True,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return cli.run_parsed(_demo, args)


def _demo(args: argparse.Namespace) -> int:
    """``main`` after parsing: expected failures raise RemaxError."""
    # Refused before minutes of data generation and training.
    atomic.check_output_dir(args.output_dir)
    disable_grappler_if_asked()
    start = time.time()
    data_root = os.path.join(args.output_dir, "data")
    dataset, weights = demo_dataset(args.config_file, args.config_override, data_root)
    build_data(args.output_dir, args.num_train, args.num_val, dataset)
    pretrain_steps = args.pretrain_steps or args.num_steps or DEFAULT_PRETRAIN_STEPS
    pretrain(data_root, dataset, weights, pretrain_steps)
    result = train_and_export(
        args.config_file,
        data_root,
        os.path.join(args.output_dir, "model"),
        args.config_override,
        args.num_steps,
    )
    export_dir = os.path.join(result["model_dir"], "export")
    picture = draw_predictions(data_root, export_dir, args.output_dir, dataset)
    report(result, picture, args.output_dir, time.time() - start)
    return 0


def run() -> None:
    """Console script ``remax-demo``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
