"""The embedded demo: no download, everything generated here.

    python -m remax_tf.demo --output_dir runs/demo

1. generates ``shapes_panoptic`` (1000 train + 200 val images, DeepLab2
   TFRecords) under ``<output_dir>/data/shapes_panoptic``;
2. trains ``configs/demo/shapes_remax.textproto`` from scratch and evaluates
   it on the 200 validation images (``trainer/train.py --mode
   train_and_eval``, in process), writing checkpoints, TensorBoard summaries
   and ``eval/metrics_latest.json`` under ``<output_dir>/model/shapes_remax``;
3. exports the trained model (SavedModel, and TFLite since the backbone is a
   MobileNetV3) to ``<output_dir>/model/shapes_remax/export``;
4. runs the exported SavedModel on a few validation images with
   ``remax_tf.predict`` and draws ``<output_dir>/demo_predictions.png``
   (image | ground truth | prediction).

``--config_override`` (repeatable) changes the config, e.g. fewer steps for a
quick look: ``--config_override
trainer_options.solver_options.training_number_of_steps=200``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import List
from typing import Optional
from typing import Sequence

from remax_tf.data import shapes
from remax_tf.data import tfrecord

DEMO_CONFIG = (
    pathlib.Path(__file__).resolve().parents[1]
    / "configs"
    / "demo"
    / "shapes_remax.textproto"
)
NUM_PICTURES = 4


def build_data(output_dir: str, num_train: int, num_val: int) -> str:
    """Generates the shapes dataset; returns the directory holding it."""
    data_root = os.path.join(output_dir, "data")
    data_dir = os.path.join(data_root, "shapes_panoptic")
    start = time.time()
    shapes.generate(data_dir, num_train=num_train, num_val=num_val)
    print(
        f"[demo] shapes_panoptic: {num_train} train + {num_val} val images in {data_dir} ({time.time() - start:.1f} s)",
        flush=True,
    )
    labels = [
        r["label"]
        for r in tfrecord.read_examples(os.path.join(data_dir, "val-*.tfrecord"))
    ]
    print(
        "[demo] validation-set statistics: "
        + json.dumps(shapes.label_statistics(labels)),
        flush=True,
    )
    return data_root


def train_and_export(
    config_file: str, data_root: str, model_dir: str, overrides: Sequence[str]
):
    """Trains, evaluates and exports; returns run_experiment's result."""
    from remax_tf.config import load_config
    from remax_tf.training import run_experiment

    environ = dict(os.environ, REMAX_DATA_DIR=data_root)
    config = load_config(
        config_file, ["trainer_options.export_at_end=true", *overrides], environ=environ
    )
    return run_experiment("train_and_eval", config, model_dir)


def draw_predictions(data_root: str, export_dir: str, output_dir: str) -> str:
    """Predicts a few validation images with the exported SavedModel and
    draws image | ground truth | prediction rows; returns the PNG path."""
    import numpy as np
    from PIL import Image

    from remax_tf import visualization
    from remax_tf.data import datasets
    from remax_tf.inference import load_predictor

    descriptor = datasets.get_dataset_descriptor(shapes.DESCRIPTOR_NAME)
    predictor = load_predictor(os.path.join(export_dir, "saved_model"))
    records = tfrecord.read_examples(
        os.path.join(data_root, "shapes_panoptic", "val-*.tfrecord")
    )
    sample_dir = os.path.join(output_dir, "val_images")
    os.makedirs(sample_dir, exist_ok=True)
    rows: List[np.ndarray] = []
    for record in records[:NUM_PICTURES]:
        name = record["image_name"].decode()
        Image.fromarray(record["image"]).save(os.path.join(sample_dir, f"{name}.png"))
        from remax_tf import common

        predicted = predictor(record["image"])[common.PRED_PANOPTIC_KEY]
        width = 384
        factor = -(-width // record["image"].shape[1])
        rows.append(
            visualization.side_by_side(
                record["image"].repeat(factor, 0).repeat(factor, 1),
                visualization.overlay(
                    record["image"], record["label"], descriptor, min_width=width
                ),
                visualization.overlay(
                    record["image"], predicted, descriptor, min_width=width
                ),
            )
        )
    path = os.path.join(output_dir, "demo_predictions.png")
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    picture = np.concatenate([p for row in rows for p in (row, gap)][:-1], axis=0)
    visualization.save_png(path, picture)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the remax_tf demo on shapes_panoptic."
    )
    parser.add_argument("--output_dir", default="runs/demo")
    parser.add_argument("--config_file", default=str(DEMO_CONFIG))
    parser.add_argument("--config_override", action="append", default=[])
    parser.add_argument("--num_train", type=int, default=1000)
    parser.add_argument("--num_val", type=int, default=200)
    args = parser.parse_args(argv)
    start = time.time()
    data_root = build_data(args.output_dir, args.num_train, args.num_val)
    result = train_and_export(
        args.config_file,
        data_root,
        os.path.join(args.output_dir, "model"),
        args.config_override,
    )
    workdir = result["model_dir"]
    export_dir = os.path.join(workdir, "export")
    picture = draw_predictions(data_root, export_dir, args.output_dir)
    metrics = result.get("metrics") or {}
    minutes = (time.time() - start) / 60
    print(f"\n[demo] finished in {minutes:.1f} min")
    if metrics:
        print(
            f"[demo] shapes_panoptic val ({metrics['num_images']} images): PQ {100 * metrics['pq']:.1f}, "
            f"SQ {100 * metrics['sq']:.1f}, RQ {100 * metrics['rq']:.1f}, "
            f"PQ things {100 * metrics['pq_things']:.1f}, PQ stuff {100 * metrics['pq_stuff']:.1f}, "
            f"mIoU {100 * metrics['miou']:.1f}"
        )
    print(
        f"[demo] checkpoints and TensorBoard summaries: {workdir}  (tensorboard --logdir {workdir})"
    )
    print(f"[demo] metrics: {os.path.join(workdir, 'eval', 'metrics_latest.json')}")
    print(f"[demo] exported model (SavedModel, TFLite): {export_dir}")
    print(f"[demo] visualisation: {picture}")
    print(
        f"[demo] predict your own images: python -m remax_tf.predict --model {export_dir}/saved_model "
        f"--images {os.path.join(args.output_dir, 'val_images')} --output_dir {os.path.join(args.output_dir, 'predictions')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
