"""Converts COCO panoptic to DeepLab2 TFRecords (``coco_panoptic``).

    python -m remax_tf.data.build_coco_data --coco_root R --output_dir O \\
        [--splits val,train] [--num_shards N] [--on_error skip]

Layout (as downloaded from cocodataset.org)::

    R/{split}2017/*.jpg
    R/annotations/panoptic_{split}2017.json
    R/annotations/panoptic_{split}2017/*.png

COCO category ids (1..200, with gaps) become semantic ids 1..133 in the order
of the ``coco_panoptic`` categories, 0 is void; crowd becomes void unless
``--notreat_crowd_as_ignore``; label divisor 256 (DeepLab2
``data/build_coco_data.py``). The ``test`` split has no labels.
"""

from __future__ import annotations

import os
from typing import List

from absl import flags

from remax_tf.data import conversion
from remax_tf.data import datasets
from remax_tf.data.panoptic_labels import original_category_map

SPLITS = ("train", "val", "test")
# DeepLab2 data/build_coco_data.py: _NUM_SHARDS.
DEFAULT_NUM_SHARDS = 1000

conversion.define_converter_flags()
# --help lists the shared converter flags too, not only under --helpfull.
flags.adopt_module_key_flags(conversion)
flags.DEFINE_string("coco_root", None, "COCO dataset root folder.")


def label_spec(treat_crowd_as_ignore: bool = True) -> conversion.LabelSpec:
    """COCO category id -> semantic id 1..133 (the coco_panoptic order)."""
    descriptor = datasets.get_dataset_descriptor(datasets.COCO_PANOPTIC)
    return conversion.LabelSpec.for_dataset(
        descriptor, original_category_map(descriptor), treat_crowd_as_ignore
    )


def list_items(coco_root: str, split: str) -> List[conversion.ImageItem]:
    image_dir = os.path.join(coco_root, f"{split}2017")
    paths = conversion.find_images(
        [os.path.join(image_dir, "*.jpg")],
        split,
        f"no *.jpg images in {image_dir}; expected the COCO layout "
        f"{coco_root}/{{split}}2017/*.jpg (see docs/datasets.md).",
    )
    if split == "test":
        return conversion.split_items(paths)
    annotation_dir = os.path.join(coco_root, "annotations")
    return conversion.split_items(
        paths,
        os.path.join(annotation_dir, f"panoptic_{split}2017.json"),
        os.path.join(annotation_dir, f"panoptic_{split}2017"),
    )


DATASET = conversion.PublicDataset(list_items, label_spec, SPLITS, DEFAULT_NUM_SHARDS)
convert = DATASET.convert  # (coco_root, output_dir, splits=None, ...)


if __name__ == "__main__":
    conversion.run_dataset_converter(convert, "coco_root")
