"""Converts Cityscapes panoptic (trainIds) to DeepLab2 TFRecords.

    python -m remax_tf.data.build_cityscapes_data --cityscapes_root R \\
        --output_dir O [--splits val,train]

Layout (cityscapesScripts ``createPanopticImgs --use-train-id``)::

    R/leftImg8bit/{split}/{city}/*_leftImg8bit.png
    R/gtFine/cityscapes_panoptic_{split}_trainId.json
    R/gtFine/cityscapes_panoptic_{split}_trainId/*.png

Category ids are trainIds 0..18 (= semantic ids), 255 is void, label divisor
1000, crowd becomes void unless ``--notreat_crowd_as_ignore`` (DeepLab2
``data/build_cityscapes_data.py``). When ``leftImg8bit/{split}/*/`` holds no
image, ``leftImg8bit/{split}/*_leftImg8bit.png`` and then
``leftImg8bit/*_leftImg8bit.png`` are tried (flattened copies such as
DeepLab2's test data); ``--image_pattern`` sets the glob explicitly.
"""

from __future__ import annotations

import os
from typing import List
from typing import Optional

from absl import flags

from remax_tf.data import conversion
from remax_tf.data import datasets

# Cityscapes splits, plus "dummy" (DeepLab2's one-image test data layout).
SPLITS = ("train", "val", "test", "dummy")
# DeepLab2 data/build_cityscapes_data.py: _NUM_SHARDS.
DEFAULT_NUM_SHARDS = 10
_IMAGE_SUFFIX = "_leftImg8bit.png"
# Globs tried in order, relative to the root; the first that matches is used.
_IMAGE_PATTERNS = (
    "leftImg8bit/{split}/*/*" + _IMAGE_SUFFIX,
    "leftImg8bit/{split}/*" + _IMAGE_SUFFIX,
    "leftImg8bit/*" + _IMAGE_SUFFIX,
)

conversion.define_converter_flags()
# --help lists the shared converter flags too, not only under --helpfull.
flags.adopt_module_key_flags(conversion)
flags.DEFINE_string("cityscapes_root", None, "Cityscapes dataset root folder.")
flags.DEFINE_string(
    "image_pattern",
    None,
    "Glob of the images relative to --cityscapes_root, '{split}' is replaced "
    "(default: the standard layout, then flattened ones).",
)


def label_spec(treat_crowd_as_ignore: bool = True) -> conversion.LabelSpec:
    descriptor = datasets.get_dataset_descriptor(datasets.CITYSCAPES_PANOPTIC)
    category_map = {
        i: i for i in range(descriptor.num_classes) if i != descriptor.ignore_label
    }
    # cityscapesScripts writes void segments with trainId 255.
    category_map[descriptor.ignore_label] = descriptor.ignore_label
    return conversion.LabelSpec.for_dataset(
        descriptor, category_map, treat_crowd_as_ignore
    )


def find_images(
    cityscapes_root: str, split: str, image_pattern: Optional[str] = None
) -> List[str]:
    patterns = (image_pattern,) if image_pattern else _IMAGE_PATTERNS
    globs = [os.path.join(cityscapes_root, p.format(split=split)) for p in patterns]
    return conversion.find_images(
        globs,
        split,
        f"no Cityscapes images for split {split!r}; tried {globs}. Fix "
        "--cityscapes_root or pass --image_pattern.",
    )


def list_items(
    cityscapes_root: str, split: str, image_pattern: Optional[str] = None
) -> List[conversion.ImageItem]:
    paths = find_images(cityscapes_root, split, image_pattern)
    if split == "test":
        return conversion.split_items(paths, name_suffix=_IMAGE_SUFFIX)
    gt_dir = os.path.join(cityscapes_root, "gtFine")
    return conversion.split_items(
        paths,
        os.path.join(gt_dir, f"cityscapes_panoptic_{split}_trainId.json"),
        os.path.join(gt_dir, f"cityscapes_panoptic_{split}_trainId"),
        name_suffix=_IMAGE_SUFFIX,
    )


DATASET = conversion.PublicDataset(
    list_items,
    label_spec,
    SPLITS,
    DEFAULT_NUM_SHARDS,
    default_splits=("train", "val", "test"),
)
convert = DATASET.convert  # (cityscapes_root, output_dir, splits=None, ...)


if __name__ == "__main__":
    conversion.run_dataset_converter(convert, "cityscapes_root", "image_pattern")
