"""Panoptic Quality with the rules of the official COCO ``pq_compute``.

The per-image rules are those of panopticapi's
``evaluation.py`` (``pq_compute_single_core``), written here from its
documented behaviour:

* segments are identified by ids; ground-truth id 0 (``VOID``) is unlabelled
  and prediction id 0 is "no segment";
* a prediction and a non-crowd ground-truth segment of the same category match
  when IoU > 0.5, where the union leaves out the prediction's pixels on
  ground-truth void; each match adds 1 to TP and its IoU to the class's sum;
* unmatched non-crowd ground-truth segments are false negatives; crowd
  segments are never matched nor counted;
* an unmatched prediction is a false positive unless more than half of its
  area lies on ground-truth void plus the crowd region of its own category
  (the last crowd segment of that category listed for the image, as in
  panopticapi);
* ground-truth areas come from the annotations, prediction areas are counted;
* per class PQ = sum IoU / (TP + FP/2 + FN/2), SQ = sum IoU / TP,
  RQ = TP / (TP + FP/2 + FN/2); All/Things/Stuff average over the classes
  with TP + FP + FN > 0, their count reported as ``n``.

:func:`accumulate_image` implements these rules on id maps; it serves both
the COCO-format CLI (``coco_panoptic.py``) and :class:`PanopticQuality`,
which evaluates DeepLab2-encoded panoptic maps (``semantic * divisor +
instance``) plus a crowd map.
"""

from __future__ import annotations

import dataclasses
from typing import Dict
from typing import Iterator
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np

# panopticapi evaluation.py: id of unlabelled pixels in ground truth and
# "no segment" in predictions.
VOID = 0
# panopticapi evaluation.py: OFFSET combining a ground-truth and a predicted id
# into one 64-bit key (ids are 24-bit RGB values).
OFFSET = 256 * 256 * 256
# A match needs IoU strictly above this (Kirillov et al., panopticapi).
MATCH_IOU = 0.5
# An unmatched prediction is ignored when more than this fraction of it lies
# on void or on a same-category crowd region (panopticapi).
IGNORED_FRACTION = 0.5


@dataclasses.dataclass
class ClassStat:
    """Running sums of one category."""

    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: "ClassStat") -> None:
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


class PQStat:
    """Per-category TP/FP/FN/IoU sums, averaged as panopticapi's ``PQStat``."""

    def __init__(self) -> None:
        self.per_class: Dict[int, ClassStat] = {}

    def __getitem__(self, category_id: int) -> ClassStat:
        return self.per_class.setdefault(int(category_id), ClassStat())

    def add(self, other: "PQStat") -> "PQStat":
        for category_id, stat in other.per_class.items():
            self[category_id].add(stat)
        return self

    def average(
        self, categories: Mapping[int, bool], isthing: Optional[bool] = None
    ) -> Tuple[Dict[str, float], Dict[int, Dict[str, float]]]:
        """Class-averaged PQ/SQ/RQ over ``categories`` (id -> isthing).

        Args:
          categories: Every evaluated category, in report order.
          isthing: None for all categories, True for things, False for stuff.

        Returns:
          ({"pq", "sq", "rq", "n"}, {category_id: {"pq", "sq", "rq"}}). Classes
          with TP + FP + FN = 0 are left out of the mean and report zeros.
          With n = 0 the means are 0 (panopticapi divides by zero there).
        """
        pq = sq = rq = 0.0
        n = 0
        per_class: Dict[int, Dict[str, float]] = {}
        for category_id, category_isthing in categories.items():
            if isthing is not None and bool(category_isthing) != isthing:
                continue
            stat = self.per_class.get(int(category_id), ClassStat())
            if stat.tp + stat.fp + stat.fn == 0:
                per_class[category_id] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            n += 1
            denominator = stat.tp + 0.5 * stat.fp + 0.5 * stat.fn
            pq_class = stat.iou / denominator
            sq_class = stat.iou / stat.tp if stat.tp != 0 else 0.0
            rq_class = stat.tp / denominator
            per_class[category_id] = {"pq": pq_class, "sq": sq_class, "rq": rq_class}
            pq += pq_class
            sq += sq_class
            rq += rq_class
        if n == 0:
            return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}, per_class
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class

    def results(self, categories: Mapping[int, bool]) -> dict:
        """panopticapi's result dict: All, Things, Stuff and per_class (All)."""
        results = {}
        for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
            results[name], per_class = self.average(categories, isthing)
            if isthing is None:
                results["per_class"] = per_class
        return results


def _counts(values: np.ndarray) -> Dict[int, int]:
    keys, counts = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist()))


def accumulate_image(
    stat: PQStat,
    gt_ids: np.ndarray,
    gt_segments: Mapping[int, Mapping],
    pred_ids: np.ndarray,
    pred_segments: Mapping[int, Mapping],
    categories: Optional[Mapping[int, bool]] = None,
    image_name: str = "",
) -> None:
    """Adds one image's TP/FP/FN/IoU to ``stat`` (official rules).

    Args:
      stat: Accumulator.
      gt_ids: [H, W] ground-truth segment ids, 0 = void.
      gt_segments: id -> {"category_id", "iscrowd", "area"}; the areas are
        used as given (panopticapi reads them from the JSON).
      pred_ids: [H, W] predicted segment ids, 0 = no segment.
      pred_segments: id -> {"category_id"}; every non-zero id of
        ``pred_ids`` must be listed and every listed id must occur.
      categories: Known category ids; predictions of others raise.
      image_name: Used in error messages.

    Raises:
      KeyError: as panopticapi, for a predicted id missing from the segment
        list (or listed but absent from the map), or an unknown category.
      ValueError: when the two maps differ in shape.
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(
            f"image {image_name}: prediction shape {pred_ids.shape} differs from "
            f"the ground truth {gt_ids.shape}."
        )
    pred_area = predicted_areas(pred_ids, pred_segments, categories, image_name)
    intersections = segment_intersections(gt_ids, pred_ids)
    gt_matched, pred_matched = _match_segments(
        stat, intersections, gt_segments, pred_segments, pred_area
    )
    _count_unmatched(
        stat,
        intersections,
        gt_segments,
        pred_segments,
        pred_area,
        gt_matched,
        pred_matched,
    )


def predicted_areas(
    pred_ids: np.ndarray,
    pred_segments: Mapping[int, Mapping],
    categories: Optional[Mapping[int, bool]],
    image_name: str = "",
) -> Dict[int, int]:
    """Area of every predicted segment; raises as panopticapi does for ids
    missing from either the map or the segment list, or unknown categories."""
    pred_area = {}
    for segment_id, area in _counts(pred_ids).items():
        if segment_id not in pred_segments:
            if segment_id == VOID:
                continue
            raise KeyError(
                f"image {image_name}: segment id {segment_id} is in the prediction "
                "PNG but not in its segments_info."
            )
        category_id = pred_segments[segment_id]["category_id"]
        if categories is not None and category_id not in categories:
            raise KeyError(
                f"image {image_name}: segment {segment_id} has unknown category_id "
                f"{category_id}."
            )
        pred_area[segment_id] = area
    missing = sorted(set(pred_segments) - set(pred_area))
    if missing:
        raise KeyError(
            f"image {image_name}: segment ids {missing} are in segments_info but "
            "not in the prediction PNG."
        )
    return pred_area


def segment_intersections(
    gt_ids: np.ndarray, pred_ids: np.ndarray
) -> Dict[Tuple[int, int], int]:
    """(ground-truth id, predicted id) -> pixels they share (void included)."""
    combined = gt_ids.astype(np.uint64) * np.uint64(OFFSET) + pred_ids.astype(np.uint64)
    return {
        (key // OFFSET, key % OFFSET): area for key, area in _counts(combined).items()
    }


def iou_matches(
    intersections: Mapping[Tuple[int, int], int],
    gt_segments: Mapping[int, Mapping],
    pred_segments: Mapping[int, Mapping],
    pred_area: Mapping[int, int],
    same_category: bool = True,
) -> Iterator[Tuple[int, int, float]]:
    """Yields (ground-truth id, predicted id, IoU) of every match: a non-crowd
    ground-truth segment and a prediction with IoU > 0.5, the prediction's
    pixels on ground-truth void left out of the union (panopticapi). With
    ``same_category=False`` the labels are not compared (a match of masks
    only); IoU > 0.5 still pairs each segment with at most one other."""
    for (gt_id, pred_id), intersection in intersections.items():
        if gt_id not in gt_segments or pred_id not in pred_area:
            continue
        gt = gt_segments[gt_id]
        if gt["iscrowd"] == 1:
            continue
        if same_category and gt["category_id"] != pred_segments[pred_id]["category_id"]:
            continue
        union = (
            pred_area[pred_id]
            + gt["area"]
            - intersection
            - intersections.get((VOID, pred_id), 0)
        )
        iou = intersection / union
        if iou > MATCH_IOU:
            yield gt_id, pred_id, iou


def _match_segments(stat, intersections, gt_segments, pred_segments, pred_area):
    """True positives: same category, not crowd, IoU > 0.5 (:func:`iou_matches`).
    Returns the matched (ground-truth ids, predicted ids)."""
    gt_matched = set()
    pred_matched = set()
    for gt_id, pred_id, iou in iou_matches(
        intersections, gt_segments, pred_segments, pred_area
    ):
        class_stat = stat[gt_segments[gt_id]["category_id"]]
        class_stat.tp += 1
        class_stat.iou += iou
        gt_matched.add(gt_id)
        pred_matched.add(pred_id)
    return gt_matched, pred_matched


def _count_unmatched(
    stat,
    intersections,
    gt_segments,
    pred_segments,
    pred_area,
    gt_matched,
    pred_matched,
) -> None:
    """False negatives (unmatched non-crowd ground truth) and false positives
    (unmatched predictions not mostly on void or a same-category crowd)."""
    # Crowd regions by category; a later crowd segment of the same category
    # replaces an earlier one, as in panopticapi.
    crowd_by_category = {}
    for gt_id, gt in gt_segments.items():
        if gt_id in gt_matched:
            continue
        if gt["iscrowd"] == 1:
            crowd_by_category[gt["category_id"]] = gt_id
            continue
        stat[gt["category_id"]].fn += 1

    for pred_id, area in pred_area.items():
        if pred_id in pred_matched:
            continue
        category_id = pred_segments[pred_id]["category_id"]
        ignored = intersections.get((VOID, pred_id), 0)
        if category_id in crowd_by_category:
            ignored += intersections.get((crowd_by_category[category_id], pred_id), 0)
        if ignored / area > IGNORED_FRACTION:
            continue
        stat[category_id].fp += 1


def deeplab2_to_segments(
    panoptic: np.ndarray,
    label_divisor: int,
    ignore_label: int,
    thing_class_ids: Sequence[int],
    is_crowd: Optional[np.ndarray] = None,
    crowd_semantic: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, Dict[int, dict]]:
    """Converts a DeepLab2 panoptic map into an id map and its segments.

    Every distinct ``semantic * divisor + instance`` value outside the ignore
    label is one segment. Crowd pixels form one crowd segment per category.

    Args:
      panoptic: [H, W] panoptic map.
      label_divisor: Panoptic label divisor.
      ignore_label: Semantic id of void.
      thing_class_ids: Semantic ids of thing classes.
      is_crowd: Optional [H, W] crowd map. Without it, thing pixels with
        instance id 0 are crowd (DeepLab2's encoding of crowd regions).
      crowd_semantic: Optional [H, W] semantic ids used as the category of crowd
        pixels (DeepLab2's input pipeline writes the ignore label on crowd
        pixels of the panoptic map but keeps their class in the semantic map).
        Without it the panoptic map's class is used.

    Returns:
      (ids [H, W] int64 with 0 = void, {id: {"category_id", "iscrowd",
      "area"}}).
    """
    panoptic = np.asarray(panoptic).astype(np.int64)
    semantic = panoptic // label_divisor
    if is_crowd is None:
        crowd = np.isin(semantic, list(thing_class_ids)) & (
            panoptic % label_divisor == 0
        )
        crowd_category = semantic
    else:
        crowd = np.asarray(is_crowd).astype(bool)
        crowd_category = (
            semantic if crowd_semantic is None else np.asarray(crowd_semantic)
        ).astype(np.int64)
    crowd &= crowd_category != ignore_label
    # Keys: -1 void, -2 - category for crowd, the panoptic value otherwise.
    keys = np.where(crowd, -2 - crowd_category, panoptic)
    keys = np.where(~crowd & (semantic == ignore_label), -1, keys)
    unique_keys, inverse, counts = np.unique(
        keys, return_inverse=True, return_counts=True
    )
    segment_ids = np.arange(len(unique_keys), dtype=np.int64) + 1
    segments = {}
    for key, segment_id, area in zip(unique_keys.tolist(), segment_ids, counts):
        if key == -1:
            segment_ids[segment_id - 1] = VOID
            continue
        if key < -1:
            info = {"category_id": -2 - key, "iscrowd": 1}
        else:
            info = {"category_id": key // label_divisor, "iscrowd": 0}
        info["area"] = int(area)
        segments[int(segment_id)] = info
    ids = segment_ids[inverse.reshape(-1)].reshape(panoptic.shape)
    return ids, segments


def pair_to_segments(
    gt_panoptic: np.ndarray,
    pred_panoptic: np.ndarray,
    label_divisor: int,
    ignore_label: int,
    thing_class_ids: Sequence[int],
    gt_is_crowd: Optional[np.ndarray] = None,
    gt_semantic: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, Dict[int, dict], np.ndarray, Dict[int, dict]]:
    """:func:`deeplab2_to_segments` of a ground truth (with its crowd) and of
    a prediction (which has no crowd: every non-void value is a segment).
    Returns (gt ids, gt segments, predicted ids, predicted segments)."""
    gt_ids, gt_segments = deeplab2_to_segments(
        gt_panoptic,
        label_divisor,
        ignore_label,
        thing_class_ids,
        gt_is_crowd,
        gt_semantic,
    )
    pred_ids, pred_segments = deeplab2_to_segments(
        pred_panoptic,
        label_divisor,
        ignore_label,
        thing_class_ids,
        is_crowd=np.zeros(np.shape(pred_panoptic), bool),
    )
    return gt_ids, gt_segments, pred_ids, pred_segments


class PanopticQuality:
    """Accumulates official-style PQ over DeepLab2-encoded panoptic maps.

    Example::

      pq = PanopticQuality(categories={1: True, 2: False}, label_divisor=256,
                           ignore_label=0)
      pq.update(gt_panoptic, pred_panoptic, gt_is_crowd, gt_semantic)
      pq.result()["All"]["pq"]
    """

    def __init__(
        self, categories: Mapping[int, bool], label_divisor: int, ignore_label: int
    ) -> None:
        """Args:
        categories: Semantic id -> isthing of every evaluated class, in report
          order (void excluded).
        label_divisor: Panoptic label divisor.
        ignore_label: Semantic id of void.
        """
        self.categories = {int(k): bool(v) for k, v in categories.items()}
        if ignore_label in self.categories:
            raise ValueError(
                f"the ignore label {ignore_label} cannot also be an evaluated class."
            )
        self.label_divisor = int(label_divisor)
        self.ignore_label = int(ignore_label)
        self.thing_class_ids = tuple(k for k, v in self.categories.items() if v)
        self.reset()

    def reset(self) -> None:
        self.stat = PQStat()
        self.num_images = 0

    def update(
        self,
        gt_panoptic: np.ndarray,
        pred_panoptic: np.ndarray,
        gt_is_crowd: Optional[np.ndarray] = None,
        gt_semantic: Optional[np.ndarray] = None,
        image_name: str = "",
    ) -> None:
        """Adds one image.

        Args:
          gt_panoptic: [H, W] ground truth, ``semantic * divisor + instance``.
          pred_panoptic: [H, W] prediction in the same encoding; pixels of the
            ignore label are "no segment".
          gt_is_crowd: Optional [H, W] crowd map (see
            :func:`deeplab2_to_segments`).
          gt_semantic: Optional [H, W] semantic ground truth giving the class of
            crowd pixels.
          image_name: For error messages.
        """
        gt_ids, gt_segments, pred_ids, pred_segments = pair_to_segments(
            gt_panoptic,
            pred_panoptic,
            self.label_divisor,
            self.ignore_label,
            self.thing_class_ids,
            gt_is_crowd,
            gt_semantic,
        )
        unknown = sorted(
            {s["category_id"] for s in pred_segments.values()} - set(self.categories)
        )
        if unknown:
            raise ValueError(
                f"image {image_name}: predicted semantic ids {unknown} are not "
                f"evaluated classes (label divisor {self.label_divisor})."
            )
        accumulate_image(
            self.stat,
            gt_ids,
            gt_segments,
            pred_ids,
            pred_segments,
            categories=None,
            image_name=image_name,
        )
        self.num_images += 1

    def result(self) -> dict:
        """{"All"|"Things"|"Stuff": {"pq", "sq", "rq", "n"}, "per_class": ...}."""
        return self.stat.results(self.categories)
