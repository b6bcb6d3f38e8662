"""Converts ADE20K panoptic to DeepLab2 TFRecords (``ade20k_panoptic``).

    python -m remax_tf.data.build_ade20k_data --ade20k_root R --output_dir O

Layout (ADEChallengeData2016 plus the COCO-format panoptic conversion of
Mask2Former's ``datasets/prepare_ade20k_pan_seg.py``, which DeepLab2 reads)::

    R/images/{training,validation}/*.jpg
    R/ade20k_panoptic_{train,val}.json
    R/ade20k_panoptic_{train,val}/*.png

That conversion numbers the 150 classes 0..149 and marks void with 255; here
(as in DeepLab2 ``data/build_ade20k_data.py``) class c becomes semantic id
c + 1 (1..150), 255 and unlabeled pixels become the ignore label 0; label
divisor 1000. Segment areas are not checked (DeepLab2 does not either).
"""

from __future__ import annotations

import os
from typing import List

from absl import flags

from remax_tf.data import conversion
from remax_tf.data import datasets

SPLITS = ("train", "val")
# DeepLab2 data/build_ade20k_data.py: _NUM_SHARDS.
DEFAULT_NUM_SHARDS = 1000
_IMAGE_FOLDERS = {"train": "images/training", "val": "images/validation"}
# Mask2Former's ADE20K panoptic JSON marks void segments with category 255.
ADE20K_JSON_VOID_CATEGORY = 255

conversion.define_converter_flags()
# --help lists the shared converter flags too, not only under --helpfull.
flags.adopt_module_key_flags(conversion)
flags.DEFINE_string("ade20k_root", None, "ADE20K dataset root folder.")


def label_spec(treat_crowd_as_ignore: bool = True) -> conversion.LabelSpec:
    descriptor = datasets.get_dataset_descriptor(datasets.ADE20K_PANOPTIC)
    # Semantic id = JSON category + 1 (DeepLab2 build_ade20k_data.py).
    category_map = {
        semantic - 1: semantic
        for semantic in range(descriptor.num_classes)
        if semantic != descriptor.ignore_label
    }
    category_map[ADE20K_JSON_VOID_CATEGORY] = descriptor.ignore_label
    return conversion.LabelSpec.for_dataset(
        descriptor, category_map, treat_crowd_as_ignore, check_area=False
    )


def list_items(ade20k_root: str, split: str) -> List[conversion.ImageItem]:
    image_dir = os.path.join(ade20k_root, _IMAGE_FOLDERS[split])
    paths = conversion.find_images(
        [os.path.join(image_dir, "*.jpg")],
        split,
        f"no *.jpg images in {image_dir}; expected the ADE20K layout "
        "{root}/images/{training,validation}/*.jpg (see docs/datasets.md).",
    )
    return conversion.split_items(
        paths,
        os.path.join(ade20k_root, f"ade20k_panoptic_{split}.json"),
        os.path.join(ade20k_root, f"ade20k_panoptic_{split}"),
    )


DATASET = conversion.PublicDataset(list_items, label_spec, SPLITS, DEFAULT_NUM_SHARDS)
convert = DATASET.convert  # (ade20k_root, output_dir, splits=None, ...)


if __name__ == "__main__":
    conversion.run_dataset_converter(convert, "ade20k_root")
