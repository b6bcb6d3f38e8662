"""COCO-panoptic segments -> DeepLab2 panoptic labels, in one place.

A COCO-panoptic annotation is a map of segment ids (the PNG, decoded by
:mod:`remax_tf.data.panoptic_ids`) plus ``segments_info`` (``id``,
``category_id``, optional ``iscrowd`` and ``area``). DeepLab2's encoding is
``semantic * label_divisor + instance`` (``data/build_coco_data.py``):

* a :class:`LabelSpec` maps the dataset's category ids to semantic ids;
* thing instances are numbered from 1 per class in ``segments_info`` order;
* crowd pixels get instance 0 and, with ``treat_crowd_as_ignore`` (DeepLab2's
  default), the ignore label;
* bad data raises :class:`ConversionError` naming the source: an unknown
  category, a PNG id missing from the JSON, a segment listed twice, a declared
  area that is not the PNG's, crowd on a stuff class, an instance id reaching
  the label divisor.

The dataset converters (:mod:`remax_tf.data.conversion`) write these labels;
evaluation (:func:`remax_tf.evaluation.coco_panoptic.coco_to_deeplab2`) reads
COCO ground truth through the same function. Numpy only.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Dict
from typing import FrozenSet
from typing import Mapping
from typing import NamedTuple
from typing import Sequence
from typing import Set

import numpy as np

from remax_tf.errors import RemaxError

_INT32_MAX = 2**31 - 1


class ConversionError(RemaxError, ValueError):
    """Bad input data; the message names the file or record and the fix."""


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    """How a dataset's panoptic annotations become DeepLab2 labels.

    Attributes:
      dataset: Dataset name, for messages.
      label_divisor: Panoptic value = semantic * divisor + instance.
      ignore_label: Semantic id of void pixels.
      thing_ids: Semantic ids of thing classes.
      category_map: The dataset's ``category_id`` -> semantic id. A category
        mapped to ``ignore_label`` is void.
      treat_crowd_as_ignore: Crowd pixels become void (DeepLab2's default);
        otherwise they keep their class with instance id 0.
      check_area: Compare each segment's declared ``area`` with the PNG.
    """

    dataset: str
    label_divisor: int
    ignore_label: int
    thing_ids: FrozenSet[int]
    category_map: Mapping[int, int]
    treat_crowd_as_ignore: bool = True
    check_area: bool = True

    @classmethod
    def for_dataset(
        cls,
        descriptor,
        category_map: Mapping[int, int],
        treat_crowd_as_ignore: bool = True,
        check_area: bool = True,
    ) -> "LabelSpec":
        """The spec of a ``datasets.DatasetDescriptor``: its name, label
        divisor, ignore label and thing classes, with ``category_map``."""
        return cls(
            dataset=descriptor.name,
            label_divisor=descriptor.panoptic_label_divisor,
            ignore_label=descriptor.ignore_label,
            thing_ids=frozenset(descriptor.class_has_instances_list),
            category_map=category_map,
            treat_crowd_as_ignore=treat_crowd_as_ignore,
            check_area=check_area,
        )


def original_category_map(descriptor) -> Dict[int, int]:
    """``descriptor.original_category_ids`` inverted: the dataset's category
    id -> semantic id, for every class but the ignore label (COCO, and the
    datasets ``build_custom_data`` writes)."""
    return {
        original: semantic
        for semantic, original in enumerate(descriptor.original_category_ids)
        if original >= 0 and semantic != descriptor.ignore_label
    }


class SegmentLabels(NamedTuple):
    """The labels of one image, each [H, W] int32.

    Attributes:
      panoptic: ``semantic * label_divisor + instance``.
      semantic: The class of every listed segment, crowd included (even
        where ``panoptic`` makes crowd void); ``ignore_label`` elsewhere.
      is_crowd: 1 on crowd segments, else 0.
    """

    panoptic: np.ndarray
    semantic: np.ndarray
    is_crowd: np.ndarray


def _checked_class(
    segment: Mapping,
    spec: LabelSpec,
    source: str,
    area: int,
    listed: Set[int],
) -> int:
    """The semantic id of ``segment``, after the checks of its JSON entry."""
    segment_id = int(segment["id"])
    category = int(segment["category_id"])
    if segment_id in listed:
        raise ConversionError(
            f"{source}: segment id {segment_id} is listed twice in the JSON."
        )
    listed.add(segment_id)
    if spec.check_area and "area" in segment and int(segment["area"]) != area:
        raise ConversionError(
            f"{source}: segment {segment_id} (category {category}) declares area "
            f"{segment['area']} but the PNG has {area} pixels with that id; the "
            "JSON and the PNG do not belong together."
        )
    if category not in spec.category_map:
        known = sorted(spec.category_map)
        raise ConversionError(
            f"{source}: segment {segment_id} has category_id {category}, which "
            f"is not a {spec.dataset} category (known ids: {known[:10]}"
            f"{'...' if len(known) > 10 else ''} {len(known)} in all). Fix the "
            "annotation or convert with the categories it was made with."
        )
    return spec.category_map[category]


def _panoptic_value(
    segment: Mapping,
    semantic: int,
    crowd: bool,
    spec: LabelSpec,
    source: str,
    instance_count: Dict[int, int],
) -> int:
    """``semantic * divisor + instance`` of a segment of a non-void class."""
    divisor = spec.label_divisor
    if semantic not in spec.thing_ids:
        if crowd:
            raise ConversionError(
                f"{source}: segment {int(segment['id'])} of stuff class {semantic} "
                f"(category {int(segment['category_id'])}) has iscrowd=1; only "
                "thing classes may be crowd."
            )
        return semantic * divisor
    if crowd:
        # DeepLab2 marks crowd as (class, instance 0) or makes it void.
        return (spec.ignore_label if spec.treat_crowd_as_ignore else semantic) * divisor
    instance_count[semantic] += 1
    if instance_count[semantic] >= divisor:
        raise ConversionError(
            f"{source}: class {semantic} (category {int(segment['category_id'])}) "
            f"has more than {divisor - 1} instances, so instance id "
            f"{instance_count[semantic]} >= label divisor {divisor}. Fix: a larger "
            "label divisor (build_custom_data --label_divisor)."
        )
    return semantic * divisor + instance_count[semantic]


def labels_from_segments(
    segment_ids: np.ndarray,
    segments: Sequence[Mapping],
    spec: LabelSpec,
    source: str,
) -> SegmentLabels:
    """The DeepLab2 labels of one image.

    Args:
      segment_ids: [H, W] segment id per pixel (0 = unlabeled).
      segments: The JSON ``segments_info``.
      spec: The dataset's label spec.
      source: The PNG path (or another name of the image), for messages.

    Raises:
      ConversionError: see the module docstring.
    """
    unique_ids, inverse, pixel_counts = np.unique(
        segment_ids, return_inverse=True, return_counts=True
    )
    index_of = {int(u): i for i, u in enumerate(unique_ids)}
    panoptic = np.full(
        len(unique_ids), spec.ignore_label * spec.label_divisor, dtype=np.int64
    )
    semantic = np.full(len(unique_ids), spec.ignore_label, dtype=np.int64)
    is_crowd = np.zeros(len(unique_ids), dtype=np.int32)
    instance_count: Dict[int, int] = collections.defaultdict(int)
    listed: Set[int] = set()
    for segment in segments:
        index = index_of.get(int(segment["id"]))
        area = 0 if index is None else int(pixel_counts[index])
        class_id = _checked_class(segment, spec, source, area, listed)
        if index is None or class_id == spec.ignore_label:
            continue
        crowd = bool(segment.get("iscrowd", 0))
        semantic[index] = class_id
        is_crowd[index] = crowd
        panoptic[index] = _panoptic_value(
            segment, class_id, crowd, spec, source, instance_count
        )
    unlisted = [int(u) for u in unique_ids if int(u) != 0 and int(u) not in listed]
    if unlisted:
        raise ConversionError(
            f"{source}: segment id(s) {unlisted[:10]} appear in the PNG but not in "
            "the JSON segments_info; the JSON and the PNG do not belong together."
        )
    if panoptic.max(initial=0) > _INT32_MAX:
        raise ConversionError(
            f"{source}: panoptic values overflow int32 with label divisor "
            f"{spec.label_divisor}."
        )
    pixels = inverse.reshape(segment_ids.shape)
    return SegmentLabels(
        panoptic[pixels].astype(np.int32),
        semantic[pixels].astype(np.int32),
        is_crowd[pixels],
    )


def panoptic_label_from_segments(
    segment_ids: np.ndarray,
    segments: Sequence[Mapping],
    spec: LabelSpec,
    source: str,
) -> np.ndarray:
    """[H, W] int32 DeepLab2 panoptic label of one image
    (:func:`labels_from_segments`' ``panoptic``)."""
    return labels_from_segments(segment_ids, segments, spec, source).panoptic
