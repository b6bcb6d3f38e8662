"""Converts your own COCO-panoptic-format dataset to DeepLab2 TFRecords.

    python -m remax_tf.data.build_custom_data \\
        --image_dir IMAGES --panoptic_json panoptic.json --panoptic_dir PNGS \\
        --output_dir O [--dataset_name my_dataset] [--split train]

Input: any COCO-panoptic JSON (``annotations`` with ``segments_info``,
``categories`` with ``id``, ``name``, ``isthing``) and its PNGs
(``id = R + 256 G + 256^2 B``); images are found through the JSON ``images``
list, or by the PNG's file name with a .jpg/.jpeg/.png extension.

Output, in ``O``: ``{split}-%05d-of-%05d.tfrecord`` shards and
``descriptor.json``, the dataset descriptor (semantic id = 1 + position in
``categories``, 0 = void; thing ids; label divisor; names and colours). A
config then only needs ``dataset: "O/descriptor.json"`` and
``file_pattern: "O/train-*.tfrecord"``. Converting another split into the same
directory adds it to the descriptor (the categories must be the same).

The label divisor is the smallest power of two >= 256 that exceeds twice the
largest per-class instance count of an image (DeepLab2's panoptic copy-paste
needs instance ids < divisor / 2), unless ``--label_divisor`` is given.
"""

from __future__ import annotations

import collections
import json
import os
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from absl import app
from absl import flags
import tensorflow as tf

from remax_tf.data import conversion
from remax_tf.data import datasets
from remax_tf.data.panoptic_labels import original_category_map

DESCRIPTOR_FILENAME = "descriptor.json"
# DeepLab2's COCO divisor; the smallest divisor chosen here.
MIN_LABEL_DIVISOR = 256
DEFAULT_NUM_SHARDS = 100
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
_INT32_MAX = 2**31 - 1

conversion.define_converter_flags()
# --help lists the shared converter flags too, not only under --helpfull.
flags.adopt_module_key_flags(conversion)
flags.DEFINE_string("image_dir", None, "Folder of the images.")
flags.DEFINE_string("panoptic_json", None, "COCO-panoptic JSON of the split.")
flags.DEFINE_string("panoptic_dir", None, "Folder of the panoptic PNGs.")
flags.DEFINE_string(
    "dataset_name", None, "Dataset name (default: the output folder's name)."
)
flags.DEFINE_string("split", "train", "Split name used in the shard file names.")
flags.DEFINE_integer(
    "label_divisor", 0, "Panoptic label divisor (0: chosen from the data)."
)


def _categories(annotations: conversion.PanopticAnnotations) -> List[Mapping]:
    categories = annotations.categories
    if not categories:
        raise conversion.ConversionError(
            f"{annotations.path} has no 'categories' list; build_custom_data needs "
            "[{'id', 'name', 'isthing'}, ...] to assign semantic ids."
        )
    seen = set()
    for entry in categories:
        missing = [k for k in ("id", "name", "isthing") if k not in entry]
        if missing:
            raise conversion.ConversionError(
                f"{annotations.path}: category {conversion._short(entry)} lacks "
                f"{missing}."
            )
        if entry["id"] in seen:
            raise conversion.ConversionError(
                f"{annotations.path}: category id {entry['id']} appears twice."
            )
        seen.add(entry["id"])
    return list(categories)


def max_instances_per_class(
    annotations: conversion.PanopticAnnotations, categories: Sequence[Mapping]
) -> int:
    """Largest number of non-crowd thing segments of one class in one image."""
    things = {int(c["id"]) for c in categories if c["isthing"]}
    largest = 0
    for annotation in annotations.annotations:
        counts = collections.Counter(
            int(s["category_id"])
            for s in annotation["segments_info"]
            if int(s["category_id"]) in things and not s.get("iscrowd", 0)
        )
        largest = max([largest, *counts.values()])
    return largest


def choose_label_divisor(max_instances: int) -> int:
    """Smallest power of two >= MIN_LABEL_DIVISOR above 2 * max_instances."""
    divisor = MIN_LABEL_DIVISOR
    while divisor // 2 <= max_instances:
        divisor *= 2
    return divisor


def make_descriptor(
    name: str,
    categories: Sequence[Mapping],
    label_divisor: int,
    splits_to_sizes: Mapping[str, int],
) -> datasets.DatasetDescriptor:
    """Semantic id i + 1 for the i-th category; 0 is void."""
    names = ["void"] + [str(c["name"]) for c in categories]
    colors = [(0, 0, 0)]
    for i, c in enumerate(categories):
        color = c.get("color")
        if color is None:
            # A deterministic, well-spread palette for categories without one.
            color = ((37 * (i + 1)) % 256, (97 * (i + 1)) % 256, (157 * (i + 1)) % 256)
        colors.append(tuple(int(v) for v in color))
    return datasets.DatasetDescriptor(
        name=name,
        num_classes=len(categories) + 1,
        ignore_label=0,
        panoptic_label_divisor=label_divisor,
        class_has_instances_list=tuple(
            i + 1 for i, c in enumerate(categories) if c["isthing"]
        ),
        class_names=tuple(names),
        class_colors=tuple(colors),
        original_category_ids=(-1,) + tuple(int(c["id"]) for c in categories),
        splits_to_sizes=dict(splits_to_sizes),
    )


def _find_image(
    image_dir: str,
    annotation: Mapping,
    annotations: conversion.PanopticAnnotations,
) -> Tuple[str, str]:
    """(image path, name) of an annotation; the path may not exist."""
    listed = annotations.image_files.get(str(annotation["image_id"]))
    if listed:
        path = os.path.join(image_dir, listed)
        return path, os.path.splitext(os.path.basename(listed))[0]
    stem = os.path.splitext(annotation["file_name"])[0]
    for extension in _IMAGE_EXTENSIONS:
        path = os.path.join(image_dir, stem + extension)
        if tf.io.gfile.exists(path):
            return path, stem
    return os.path.join(image_dir, stem + ".jpg"), stem


def list_items(
    image_dir: str,
    panoptic_dir: str,
    annotations: conversion.PanopticAnnotations,
) -> List[conversion.ImageItem]:
    items = []
    for annotation in annotations.annotations:
        path, name = _find_image(image_dir, annotation, annotations)
        problem = None
        if not tf.io.gfile.exists(path):
            problem = (
                f"image of annotation {annotation['image_id']!r} not found: {path} "
                f"(looked in {image_dir} via the JSON 'images' list or the PNG name)."
            )
        items.append(
            conversion.ImageItem(
                name=name,
                image_path=path,
                label_path=os.path.join(panoptic_dir, annotation["file_name"]),
                segments=tuple(annotation["segments_info"]),
                problem=problem,
            )
        )
    return sorted(items, key=lambda item: item.name)


def _existing_descriptor(path: str) -> Optional[datasets.DatasetDescriptor]:
    if not tf.io.gfile.exists(path):
        return None
    return datasets.load_descriptor_json(path)


def convert(
    image_dir: str,
    panoptic_json: str,
    panoptic_dir: str,
    output_dir: str,
    dataset_name: Optional[str] = None,
    split: str = "train",
    label_divisor: int = 0,
    num_shards: Optional[int] = None,
    treat_crowd_as_ignore: bool = True,
    on_error: str = "fail",
    num_workers: int = 1,
    progress: bool = True,
) -> Tuple[conversion.SplitSummary, str]:
    """Converts one split; returns its summary and the descriptor path."""
    name = dataset_name or os.path.basename(os.path.normpath(output_dir))
    builtin = (
        datasets.COCO_PANOPTIC,
        datasets.CITYSCAPES_PANOPTIC,
        datasets.ADE20K_PANOPTIC,
        datasets.SHAPES_PANOPTIC,
    )
    if name in builtin:
        raise ValueError(
            f"dataset name {name!r} is a built-in dataset; pass another --dataset_name."
        )
    annotations = conversion.PanopticAnnotations(panoptic_json)
    categories = _categories(annotations)
    needed = max_instances_per_class(annotations, categories)
    descriptor_path = os.path.join(output_dir, DESCRIPTOR_FILENAME)
    previous = _existing_descriptor(descriptor_path)
    if label_divisor:
        divisor = int(label_divisor)
    elif previous is not None:
        divisor = previous.panoptic_label_divisor
    else:
        divisor = choose_label_divisor(needed)
    if divisor <= needed:
        raise conversion.ConversionError(
            f"{panoptic_json}: an image holds {needed} instances of one class, so "
            f"the label divisor must exceed {needed} (it is {divisor}). Re-convert "
            f"every split with --label_divisor {choose_label_divisor(needed)}."
        )
    if (len(categories) + 1) * divisor > _INT32_MAX:
        raise conversion.ConversionError(
            f"{len(categories)} classes x label divisor {divisor} overflow int32."
        )
    descriptor = make_descriptor(name, categories, divisor, {})
    if previous is not None:
        same = (
            previous.class_names == descriptor.class_names
            and previous.original_category_ids == descriptor.original_category_ids
            and previous.class_has_instances_list == descriptor.class_has_instances_list
            and previous.panoptic_label_divisor == divisor
        )
        if not same:
            raise conversion.ConversionError(
                f"{descriptor_path} was written for other categories or another "
                f"label divisor ({previous.panoptic_label_divisor}) than "
                f"{panoptic_json} ({divisor}); use another --output_dir or delete it."
            )
    spec = conversion.LabelSpec.for_dataset(
        descriptor, original_category_map(descriptor), treat_crowd_as_ignore
    )
    summary = conversion.run_splits(
        lambda _: list_items(image_dir, panoptic_dir, annotations),
        spec,
        output_dir,
        [split],
        num_shards or DEFAULT_NUM_SHARDS,
        on_error,
        num_workers,
        progress,
    )[split]
    sizes = dict(previous.splits_to_sizes) if previous is not None else {}
    sizes[split] = summary.num_images - len(summary.skipped)
    descriptor = make_descriptor(name, categories, divisor, sizes)
    tmp = descriptor_path + ".incomplete"
    with tf.io.gfile.GFile(tmp, "w") as f:
        json.dump(datasets.descriptor_to_json(descriptor), f, indent=1)
    tf.io.gfile.rename(tmp, descriptor_path, overwrite=True)
    return summary, descriptor_path


def main(argv: Sequence[str]) -> None:
    del argv
    f = flags.FLAGS
    if f.splits:
        raise app.UsageError("build_custom_data converts one split: use --split.")
    _, descriptor_path = conversion.run_cli(
        convert,
        f.image_dir,
        f.panoptic_json,
        f.panoptic_dir,
        f.output_dir,
        f.dataset_name,
        f.split,
        f.label_divisor,
        f.num_shards,
        f.treat_crowd_as_ignore,
        f.on_error,
        f.num_workers,
        f.progress,
    )
    print(
        f"descriptor: {descriptor_path}\nIn the config: dataset: "
        f'"{descriptor_path}" and file_pattern: '
        f'"{os.path.join(f.output_dir, f.split)}-*.tfrecord"'
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["image_dir", "panoptic_json", "panoptic_dir", "output_dir"]
    )
    conversion.run_app(main)
