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
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

from absl import flags

from remax_tf.data import conversion
from remax_tf.data import datasets

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
    category_map = {
        original: semantic
        for semantic, original in enumerate(descriptor.original_category_ids)
        if original >= 0 and semantic != descriptor.ignore_label
    }
    return conversion.LabelSpec(
        dataset=descriptor.name,
        label_divisor=descriptor.panoptic_label_divisor,
        ignore_label=descriptor.ignore_label,
        thing_ids=frozenset(descriptor.class_has_instances_list),
        category_map=category_map,
        treat_crowd_as_ignore=treat_crowd_as_ignore,
    )


def list_items(coco_root: str, split: str) -> List[conversion.ImageItem]:
    import tensorflow as tf

    image_dir = os.path.join(coco_root, f"{split}2017")
    paths = sorted(tf.io.gfile.glob(os.path.join(image_dir, "*.jpg")))
    if not paths:
        raise conversion.ConversionError(
            f"no *.jpg images in {image_dir}; expected the COCO layout "
            f"{coco_root}/{{split}}2017/*.jpg (see docs/datasets.md)."
        )
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if split == "test":
        return conversion.items_for_images(paths, names, None, None)
    annotation_dir = os.path.join(coco_root, "annotations")
    annotations = conversion.PanopticAnnotations(
        os.path.join(annotation_dir, f"panoptic_{split}2017.json")
    )
    label_dir = os.path.join(annotation_dir, f"panoptic_{split}2017")
    return conversion.items_for_images(paths, names, annotations, label_dir)


def convert(
    coco_root: str,
    output_dir: str,
    splits: Optional[Sequence[str]] = None,
    num_shards: Optional[int] = None,
    treat_crowd_as_ignore: bool = True,
    on_error: str = "fail",
    num_workers: int = 1,
    progress: bool = True,
) -> Dict[str, conversion.SplitSummary]:
    """Converts the requested splits (default: train, val, test)."""
    return conversion.run_splits(
        lambda split: list_items(coco_root, split),
        label_spec(treat_crowd_as_ignore),
        output_dir,
        conversion.resolve_splits(splits, SPLITS),
        num_shards or DEFAULT_NUM_SHARDS,
        on_error,
        num_workers,
        progress,
    )


if __name__ == "__main__":
    conversion.run_dataset_converter(convert, "coco_root")
