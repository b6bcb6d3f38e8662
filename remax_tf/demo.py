"""The embedded demo: no download, everything generated here.

    python -m remax_tf.demo --output_dir runs/demo

Step 1 generates ``shapes_panoptic`` (1000 train + 200 val images, DeepLab2
TFRecords) under ``<output_dir>/data/shapes_panoptic`` and prints its
statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional
from typing import Sequence

from remax_tf.data import shapes
from remax_tf.data import tfrecord


def build_data(output_dir: str, num_train: int, num_val: int) -> str:
    """Generates the shapes dataset; returns the directory of its shards."""
    data_dir = os.path.join(output_dir, "data", "shapes_panoptic")
    start = time.time()
    shapes.generate(data_dir, num_train=num_train, num_val=num_val)
    print(
        f"[demo] shapes_panoptic: {num_train} train + {num_val} val images in {data_dir} ({time.time() - start:.1f} s)"
    )
    labels = [
        r["label"]
        for r in tfrecord.read_examples(os.path.join(data_dir, "val-*.tfrecord"))
    ]
    print("[demo] validation-set statistics:")
    print(json.dumps(shapes.label_statistics(labels), indent=1))
    return data_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the remax_tf demo on shapes_panoptic."
    )
    parser.add_argument("--output_dir", default="runs/demo")
    parser.add_argument("--num_train", type=int, default=1000)
    parser.add_argument("--num_val", type=int, default=200)
    args = parser.parse_args(argv)
    build_data(args.output_dir, args.num_train, args.num_val)
    return 0


if __name__ == "__main__":
    sys.exit(main())
