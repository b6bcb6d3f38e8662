"""Throughput of the training input pipeline (images per second).

    python benchmarks/input_pipeline.py [--batches 30] [--warmup 5]

Rows:

* ``coco_641``: DeepLab2's kMaX COCO training recipe (resize to range, random
  scale 0.3..1.7 step 0.1, "simple_classification_policy" AutoAugment,
  panoptic copy-paste 0.5 with things "all" / stuff "random" / void "none",
  thing-id targets) at crop 641, batch 8, on a temporary COCO TFRecord built
  by ``build_coco_data`` from the two real COCO images of
  ``tests/testdata/coco_panoptic_sample`` (copied into 8 shards), so nothing
  is downloaded;
* ``demo_129``: the ``train_dataset_options`` of
  ``configs/demo/shapes_remax.textproto`` (shapes_panoptic at crop 129) on
  256 generated shapes images.

Each row builds the dataset, pulls ``--warmup`` batches (tracing, buffers
filling), then times ``--batches`` batches: images per second (wall clock;
lower when other processes share the CPU) and CPU milliseconds per image (all
threads; what the pipeline costs). Prints a table, then as its last line one
JSON object.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Dict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from google.protobuf import text_format  # noqa: E402
import tensorflow as tf  # noqa: E402

from remax_tf.benchmarking.harness import print_report  # noqa: E402
from remax_tf.data import build_coco_data  # noqa: E402
from remax_tf.data import build_dataset  # noqa: E402
from remax_tf.data import tfrecord  # noqa: E402
from remax_tf.protos import dataset_pb2  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# The real COCO sample kept with the tests (tests/testdata/README.md).
DEFAULT_TESTDATA = REPO / "tests" / "testdata"
DEMO_CONFIG = REPO / "configs" / "demo" / "shapes_remax.textproto"
COCO_SHARDS = 8
DEMO_IMAGES = 256

# DeepLab2 configs/coco/kmax_deeplab/kmax_meta_r50_os32.textproto
# (train_dataset_options) at crop 641 instead of 1281.
COCO_RECIPE_641 = """
dataset: "coco_panoptic"
batch_size: 8
crop_size: 641
crop_size: 641
min_resize_value: 641
max_resize_value: 641
augmentations {
  min_scale_factor: 0.3
  max_scale_factor: 1.7
  scale_factor_step_size: 0.1
  autoaugment_policy_name: "simple_classification_policy"
  panoptic_copy_paste {
    panoptic_copy_paste_scale: 0.5
    panoptic_copy_paste_thing_option: "all"
    panoptic_copy_paste_stuff_option: "random"
    panoptic_copy_paste_void_option: "none"
  }
}
increase_small_instance_weights: false
small_instance_weight: 1.0
thing_id_mask_annotations: true
"""


def _coco_records(testdata: pathlib.Path, workdir: pathlib.Path) -> str:
    """COCO-layout tree from the sample -> build_coco_data -> 8 shards."""
    sample = testdata / "coco_panoptic_sample"
    root = workdir / "coco"
    (root / "val2017").mkdir(parents=True)
    (root / "annotations" / "panoptic_val2017").mkdir(parents=True)
    for jpg in sorted((sample / "input_images").glob("*.jpg")):
        shutil.copy(jpg, root / "val2017" / jpg.name)
    for png in sorted((sample / "panoptic_examples").glob("*.png")):
        shutil.copy(png, root / "annotations" / "panoptic_val2017" / png.name)
    shutil.copy(
        sample / "panoptic_examples.json",
        root / "annotations" / "panoptic_val2017.json",
    )
    converted = workdir / "converted"
    build_coco_data.convert(
        str(root), str(converted), splits=["val"], num_shards=1, progress=False
    )
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(str(converted / "val-00000-of-00001.tfrecord"))
    ]
    out = workdir / "coco_tfrecord"
    out.mkdir()
    for path in tfrecord.shard_paths(str(out), "train", COCO_SHARDS):
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                writer.write(record)
    return str(out / "train-*.tfrecord")


def _demo_options(workdir: pathlib.Path):
    from remax_tf.data import shapes

    data = workdir / "shapes_panoptic"
    shapes.generate(str(data), num_train=DEMO_IMAGES, num_val=0, num_workers=1)
    text = DEMO_CONFIG.read_text().replace("${REMAX_DATA_DIR}", str(workdir))
    from remax_tf.protos import config_pb2

    config = text_format.Parse(text, config_pb2.ExperimentOptions())
    return config.train_dataset_options


def measure(options, warmup: int, batches: int) -> Dict[str, float]:
    start = time.perf_counter()
    iterator = iter(build_dataset(options, is_training=True))
    for _ in range(warmup):
        next(iterator)
    ready = time.perf_counter()
    cpu_ready = time.process_time()
    for _ in range(batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - ready
    cpu = time.process_time() - cpu_ready
    images = batches * int(batch["image"].shape[0])
    return {
        "images_per_s": round(images / elapsed, 2),
        # CPU time of all the pipeline's threads per image: robust to other
        # processes sharing the machine, unlike images/s.
        "cpu_ms_per_image": round(1000 * cpu / images, 1),
        "batch_size": int(batch["image"].shape[0]),
        "crop": list(batch["image"].shape[1:3]),
        "timed_batches": batches,
        "startup_s": round(ready - start, 1),
    }


def format_table(results) -> str:
    """One line per row (the ``machine`` entry left out)."""
    lines = [
        f"{'row':<10} {'images/s':>9} {'CPU ms/img':>11} {'batch':>6} {'crop':>10} "
        f"{'startup s':>10}"
    ]
    for name, r in results.items():
        if name == "machine":
            continue
        crop = "x".join(str(c) for c in r["crop"])
        lines.append(
            f"{name:<10} {r['images_per_s']:>9.1f} {r['cpu_ms_per_image']:>11.1f} "
            f"{r['batch_size']:>6} {crop:>10} "
            f"{r['startup_s']:>10.1f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rows", default="coco_641,demo_129")
    parser.add_argument(
        "--testdata",
        default=str(DEFAULT_TESTDATA),
        help="Folder holding coco_panoptic_sample/ (default: tests/testdata).",
    )
    args = parser.parse_args(argv)
    rows = args.rows.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        if "coco_641" in rows:
            options = text_format.Parse(COCO_RECIPE_641, dataset_pb2.DatasetOptions())
            options.file_pattern.append(
                _coco_records(pathlib.Path(args.testdata), workdir)
            )
            results["coco_641"] = measure(options, args.warmup, args.batches)
        if "demo_129" in rows:
            results["demo_129"] = measure(
                _demo_options(workdir), args.warmup, args.batches
            )
    results["machine"] = {
        "cpus": os.cpu_count(),
        "tensorflow": tf.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print_report(format_table(results), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
