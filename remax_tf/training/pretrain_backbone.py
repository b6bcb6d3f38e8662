"""Backbone pre-training on a synthetic task, as users start from ImageNet.

The paper (and every kMaX recipe) starts from an ImageNet-pretrained backbone;
remax_tf cannot download one at run time. This module gives the embedded
datasets the same start: it trains a kMaX pixel encoder (e.g.
``kmax_mobilenet_v3_small``) to classify single-object crops of a
``shapes_panoptic`` dataset (``shapes.render_object``: one centred thing, or
stuff alone, labelled with its class id), then writes a TF2 checkpoint that
holds the encoder under ``encoder``, the layout DeepLab2's ImageNet
checkpoints and remax_tf's own training checkpoints use. Load it exactly as
ImageNet weights are loaded:

    model_options { initial_checkpoint: "<output_dir>" }
    # or: model_options { backbone { pretrained_weights: "<output_dir>" } }

    python -m remax_tf.training.pretrain_backbone \\
        --dataset shapes_panoptic_v2 --output_dir /tmp/pretrained/mnv3s_v2

Runs are cached: ``pretraining.json`` records the request; a second call with
the same request returns the existing checkpoint at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Dict
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from remax_tf import atomic
from remax_tf import cli
from remax_tf.data import shapes
from remax_tf.json_io import write_json_atomic
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.training.pretrain_crops import CROP_SIZE
from remax_tf.training.pretrain_crops import render_crop_set

RECORD_FILE = "pretraining.json"


@dataclasses.dataclass(frozen=True)
class PretrainRequest:
    """What a pre-training run does; its identity for the cache.

    Attributes:
      backbone: A kMaX backbone name (``remax_tf.model.pixel_encoder``).
      dataset: A shapes dataset (``shapes.PRESETS``) whose classes are drawn.
      steps: Training steps.
      batch_size: Crops per step.
      num_images: Distinct training crops rendered (re-used with flips and
        90-degree rotations).
      learning_rate: Peak AdamW learning rate (cosine decay to 0).
      num_val_images: Held-out crops the accuracy is measured on.
      seed: Seed of the crops and of the initial weights.
    """

    backbone: str = "kmax_mobilenet_v3_small"
    dataset: str = shapes.V2.dataset
    steps: int = 2500
    batch_size: int = 64
    num_images: int = 8000
    # Measured on shapes_panoptic_v2 (MobileNetV3-Small, 2500 steps): 92.9%
    # held-out crop accuracy at 2e-3, 95.1% at 5e-3 (docs/benchmarks.md).
    learning_rate: float = 5e-3
    num_val_images: int = 1000
    seed: int = 0


def read_record(output_dir: str) -> Optional[Dict[str, object]]:
    try:
        with open(os.path.join(output_dir, RECORD_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def pretrain(
    request: PretrainRequest, output_dir: str, log_every: int = 100
) -> Dict[str, object]:
    """Trains (or finds cached) and returns the record: the checkpoint prefix,
    validation accuracy and time. See the module docstring."""
    wanted = dataclasses.asdict(request)
    record = read_record(output_dir)
    if record and record.get("request") == wanted:
        if tf.train.latest_checkpoint(output_dir):
            print(f"[pretrain] cached: {record['checkpoint']}", flush=True)
            return record
    os.makedirs(output_dir, exist_ok=True)
    start = time.time()
    train_x, train_y = render_crop_set(
        request.dataset, request.seed, "train", request.num_images
    )
    val_x, val_y = render_crop_set(
        request.dataset, request.seed, "val", request.num_val_images
    )
    classes = shapes.PRESETS[request.dataset].classes
    num_classes = max(classes.thing_ids + classes.stuff_ids) + 1
    print(
        f"[pretrain] {len(train_x)} + {len(val_x)} crops of {request.dataset} "
        f"({num_classes - 1} classes) in {time.time() - start:.1f} s",
        flush=True,
    )

    tf_keras.utils.set_random_seed(request.seed)
    encoder = build_pixel_encoder(request.backbone)
    pooled = tf_keras.layers.GlobalAveragePooling2D()
    classifier = tf_keras.layers.Dense(num_classes, name="pretrain_logits")

    def logits_of(images, training):
        x = tf.cast(images, tf.float32) / 127.5 - 1.0  # as KMaXDeepLab.call
        return classifier(pooled(encoder(x, training=training)["res5"]))

    schedule = tf_keras.optimizers.schedules.CosineDecay(
        request.learning_rate, request.steps, warmup_target=None
    )
    optimizer = tf_keras.optimizers.AdamW(schedule, weight_decay=1e-4)
    logits_of(tf.zeros([1, CROP_SIZE, CROP_SIZE, 3], tf.uint8), False)
    variables = encoder.trainable_variables + classifier.trainable_variables

    @tf.function
    def train_step(images, labels):
        # Flips and 90-degree turns: the classes are rotation invariant.
        images = tf.image.random_flip_left_right(images)
        images = tf.image.rot90(images, tf.random.uniform([], 0, 4, tf.int32))
        with tf.GradientTape() as tape:
            logits = logits_of(images, True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function
    def predict(images):
        return tf.argmax(logits_of(images, False), -1, output_type=tf.int32)

    rng = np.random.default_rng(request.seed)
    train_start = time.time()
    for step in range(1, request.steps + 1):
        pick = rng.integers(0, len(train_x), request.batch_size)
        loss = float(train_step(train_x[pick], train_y[pick]))
        if not np.isfinite(loss):
            raise FloatingPointError(f"pre-training loss is {loss} at step {step}")
        if step % log_every == 0 or step == request.steps:
            rate = step / (time.time() - train_start)
            eta = (request.steps - step) / rate
            print(
                f"[pretrain] step {step}/{request.steps} loss {loss:.3f} "
                f"{rate:.2f} steps/s ETA {eta:.0f} s",
                flush=True,
            )
    correct = sum(
        int(np.sum(predict(val_x[i : i + 250]).numpy() == val_y[i : i + 250]))
        for i in range(0, len(val_x), 250)
    )
    accuracy = correct / len(val_x)
    prefix = tf.train.Checkpoint(encoder=encoder).save(os.path.join(output_dir, "ckpt"))
    record = {
        "request": wanted,
        "checkpoint": prefix,
        "val_accuracy": round(accuracy, 4),
        "num_classes": num_classes - 1,
        "seconds": round(time.time() - start, 1),
    }
    write_json_atomic(os.path.join(output_dir, RECORD_FILE), record, indent=1)
    print(
        f"[pretrain] validation accuracy {accuracy:.3f} on {len(val_x)} crops; "
        f"{prefix} ({record['seconds']} s)",
        flush=True,
    )
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    defaults = PretrainRequest()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="checkpoint directory")
    parser.add_argument(
        "--backbone", default=defaults.backbone, help="kMaX backbone name"
    )
    parser.add_argument(
        "--dataset",
        default=defaults.dataset,
        choices=sorted(shapes.PRESETS),
        help="shapes dataset whose classes the crops show",
    )
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size)
    parser.add_argument("--num_images", type=int, default=defaults.num_images)
    parser.add_argument("--learning_rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    return cli.run_parsed(_pretrain, args)


def _pretrain(args: argparse.Namespace) -> int:
    """``main`` after parsing: expected failures raise RemaxError."""
    atomic.check_output_dir(args.output_dir)
    request = PretrainRequest(
        backbone=args.backbone,
        dataset=args.dataset,
        steps=args.steps,
        batch_size=args.batch_size,
        num_images=args.num_images,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    pretrain(request, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
