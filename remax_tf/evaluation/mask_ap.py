"""COCO mask AP of the thing segments, computed with pycocotools.

As DeepLab2's ``PanopticInstanceAveragePrecision``: ground-truth instances
are the non-crowd thing segments of the panoptic ground truth, crowd regions
enter as ``iscrowd`` annotations, detections are the predicted thing segments
with one score each.
"""

from __future__ import annotations

import contextlib
import io
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# The 12 numbers of COCOeval.summarize(), in order.
STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR_1",
    "AR_10",
    "AR_100",
    "AR_small",
    "AR_medium",
    "AR_large",
)


def _encode(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


class MaskAP:
    """Accumulates instances over images, then runs ``COCOeval(iouType='segm')``."""

    def __init__(self, thing_class_ids: Sequence[int], verbose: bool = False) -> None:
        """Args:
        thing_class_ids: Category ids of the evaluated (thing) classes.
        verbose: Print pycocotools' summary.
        """
        self.thing_class_ids = tuple(int(i) for i in thing_class_ids)
        self.verbose = verbose
        self.reset()

    def reset(self) -> None:
        self.images: List[dict] = []
        self.gt_annotations: List[dict] = []
        self.detections: List[dict] = []

    def update(
        self,
        gt_masks: Sequence[np.ndarray],
        gt_classes: Sequence[int],
        gt_is_crowd: Sequence[bool],
        pred_masks: Sequence[np.ndarray],
        pred_classes: Sequence[int],
        pred_scores: Sequence[float],
    ) -> None:
        """Adds one image's instances ([H, W] boolean masks, all the same size)."""
        image_id = len(self.images) + 1
        shapes = {np.shape(m) for m in list(gt_masks) + list(pred_masks)}
        if len(shapes) > 1:
            raise ValueError(f"instance masks of one image differ in shape: {shapes}.")
        if not shapes:
            self._add_image(image_id, None)
            return
        height, width = shapes.pop()
        self._add_image(image_id, (height, width))
        for mask, label, crowd in zip(gt_masks, gt_classes, gt_is_crowd):
            rle = _encode(mask)
            self.gt_annotations.append(
                {
                    "id": len(self.gt_annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": mask_utils.toBbox(rle).tolist(),
                    "iscrowd": int(bool(crowd)),
                }
            )
        for mask, label, score in zip(pred_masks, pred_classes, pred_scores):
            self.detections.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "segmentation": _encode(mask),
                    "score": float(score),
                }
            )

    def _add_image(self, image_id: int, size: Optional[tuple]) -> None:
        height, width = size if size is not None else (0, 0)
        self.images.append({"id": image_id, "height": int(height), "width": int(width)})

    def update_from_panoptic(
        self,
        gt_panoptic: np.ndarray,
        pred_panoptic: np.ndarray,
        label_divisor: int,
        pred_segment_scores: Optional[Mapping[int, float]] = None,
        gt_is_crowd: Optional[np.ndarray] = None,
        gt_semantic: Optional[np.ndarray] = None,
    ) -> None:
        """Adds one image given as DeepLab2 panoptic maps.

        Args:
          gt_panoptic: [H, W] ground truth.
          pred_panoptic: [H, W] prediction.
          label_divisor: Panoptic label divisor.
          pred_segment_scores: Predicted panoptic value -> score; missing
            values score 1.
          gt_is_crowd: Optional crowd map; without it, thing pixels with
            instance 0 are crowd.
          gt_semantic: Optional semantic map giving the class of crowd pixels.
        """
        things = list(self.thing_class_ids)
        gt_panoptic = np.asarray(gt_panoptic).astype(np.int64)
        gt_sem = gt_panoptic // label_divisor
        if gt_is_crowd is None:
            crowd = np.isin(gt_sem, things) & (gt_panoptic % label_divisor == 0)
            crowd_sem = gt_sem
        else:
            crowd = np.asarray(gt_is_crowd).astype(bool)
            crowd_sem = gt_sem if gt_semantic is None else np.asarray(gt_semantic)
        gt_masks, gt_classes, gt_crowd = [], [], []
        for value in np.unique(gt_panoptic[~crowd]):
            if value // label_divisor in things:
                gt_masks.append((gt_panoptic == value) & ~crowd)
                gt_classes.append(int(value // label_divisor))
                gt_crowd.append(False)
        for label in np.unique(crowd_sem[crowd]):
            if label in things:
                gt_masks.append(crowd & (crowd_sem == label))
                gt_classes.append(int(label))
                gt_crowd.append(True)
        pred_panoptic = np.asarray(pred_panoptic).astype(np.int64)
        pred_masks, pred_classes, pred_scores = [], [], []
        scores: Dict[int, float] = dict(pred_segment_scores or {})
        for value in np.unique(pred_panoptic):
            if value // label_divisor in things:
                pred_masks.append(pred_panoptic == value)
                pred_classes.append(int(value // label_divisor))
                pred_scores.append(scores.get(int(value), 1.0))
        self.update(
            gt_masks, gt_classes, gt_crowd, pred_masks, pred_classes, pred_scores
        )

    def result(self) -> Dict[str, float]:
        """The 12 COCO numbers (AP, AP50, ... AR_large), -1 where undefined.

        Without any detection every number is 0 (pycocotools cannot load an
        empty result list), as in DeepLab2.
        """
        if not self.detections:
            return {name: 0.0 for name in STAT_NAMES}
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": self.images,
            "annotations": self.gt_annotations,
            "categories": [{"id": c} for c in self.thing_class_ids],
        }
        quiet = contextlib.redirect_stdout(io.StringIO())
        with contextlib.nullcontext() if self.verbose else quiet:
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(self.detections)
            evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        return {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats)}
