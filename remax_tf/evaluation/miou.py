"""Semantic mean IoU from an accumulated confusion matrix.

Follows the convention of DeepLab2's evaluator (a Keras ``MeanIoU`` with
ignore pixels weighted 0): ground-truth pixels of the ignore label are
skipped; a class's IoU is TP / (TP + FP + FN); the mean runs over the
classes whose denominator is non-zero. A prediction of the ignore label on a
labelled pixel counts as a miss of the ground-truth class.
"""

from __future__ import annotations

from typing import Dict
from typing import Optional
from typing import Sequence

import numpy as np


class MeanIoU:
    """Accumulates a [num_classes, num_classes] confusion matrix (gt, pred)."""

    def __init__(
        self,
        num_classes: int,
        ignore_label: int,
        class_ids: Optional[Sequence[int]] = None,
    ) -> None:
        """Args:
        num_classes: Semantic ids lie in [0, num_classes) (DeepLab2's
          ``num_classes``; the ignore label may lie outside, e.g. 255).
        ignore_label: Ground-truth pixels with this id are not evaluated.
        class_ids: Classes averaged; default every id in range but the ignore
          label.
        """
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        if class_ids is None:
            class_ids = [i for i in range(self.num_classes) if i != self.ignore_label]
        self.class_ids = tuple(int(i) for i in class_ids)
        self.reset()

    def reset(self) -> None:
        # One extra row/column collects the ignore label when it is out of range.
        size = self.num_classes + 1
        self.confusion = np.zeros((size, size), np.int64)

    def _index(self, labels: np.ndarray, name: str) -> np.ndarray:
        labels = np.asarray(labels).astype(np.int64)
        index = np.where(labels == self.ignore_label, self.num_classes, labels)
        bad = (index < 0) | (index > self.num_classes)
        if bad.any():
            raise ValueError(
                f"{name} holds ids {sorted(set(labels[bad].tolist()))[:10]} outside "
                f"[0, {self.num_classes}) and different from the ignore label "
                f"{self.ignore_label}."
            )
        return index

    def update(self, gt_semantic: np.ndarray, pred_semantic: np.ndarray) -> None:
        """Adds one image (or a batch) of semantic maps of equal shape."""
        if np.shape(gt_semantic) != np.shape(pred_semantic):
            raise ValueError(
                f"semantic prediction shape {np.shape(pred_semantic)} differs from "
                f"the ground truth {np.shape(gt_semantic)}."
            )
        gt = self._index(gt_semantic, "ground-truth semantic map").reshape(-1)
        pred = self._index(pred_semantic, "predicted semantic map").reshape(-1)
        labelled = gt != self.num_classes
        size = self.num_classes + 1
        self.confusion += np.bincount(
            gt[labelled] * size + pred[labelled], minlength=size * size
        ).reshape(size, size)

    def per_class_iou(self) -> Dict[int, float]:
        """IoU of every class with a non-zero union."""
        tp = np.diag(self.confusion)
        gt_total = self.confusion.sum(axis=1)
        pred_total = self.confusion.sum(axis=0)
        result = {}
        for c in self.class_ids:
            union = gt_total[c] + pred_total[c] - tp[c]
            if union > 0:
                result[c] = float(tp[c] / union)
        return result

    def result(self) -> float:
        """Mean IoU over the classes with a non-zero union (0 if none)."""
        ious = self.per_class_iou()
        return float(np.mean(list(ious.values()))) if ious else 0.0
