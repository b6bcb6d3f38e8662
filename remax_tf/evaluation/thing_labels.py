"""Which label each found thing got: "masks fine, labels wrong" at a glance.

A ground-truth thing is *found* when a predicted thing segment overlaps it
with IoU > 0.5 whatever the two labels: the match of the class-agnostic
things PQ (``pq_things_class_agnostic``), whose true positives are exactly the
found things. Of those, the label accuracy is the fraction whose predicted
class is the ground truth's, and the confusions list the (ground truth,
predicted) class pairs of the others, most frequent first. When
``pq_things_class_agnostic`` is high and the label accuracy low, the model
segments things but names them wrongly (issue 13's diagnosis of the
synthetic regime: neighbouring hues confused, docs/benchmarks.md).
"""

from __future__ import annotations

import collections
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import numpy as np

from remax_tf.evaluation.panoptic_quality import iou_matches
from remax_tf.evaluation.panoptic_quality import pair_to_segments
from remax_tf.evaluation.panoptic_quality import predicted_areas
from remax_tf.evaluation.panoptic_quality import segment_intersections

# Confused class pairs listed in the result (the rest are only counted).
DEFAULT_TOP_CONFUSIONS = 10


class ThingLabelConfusion:
    """Accumulates (ground-truth class, predicted class) of found things.

    Example::

      labels = ThingLabelConfusion(thing_class_ids=(1, 2), label_divisor=256,
                                   ignore_label=0)
      labels.update(gt_panoptic, pred_panoptic, gt_is_crowd, gt_semantic)
      labels.result()["thing_label_accuracy"]
    """

    def __init__(
        self, thing_class_ids: Sequence[int], label_divisor: int, ignore_label: int
    ) -> None:
        self.thing_class_ids = tuple(int(c) for c in thing_class_ids)
        self._things = frozenset(self.thing_class_ids)
        self.label_divisor = int(label_divisor)
        self.ignore_label = int(ignore_label)
        self.reset()

    def reset(self) -> None:
        self.pairs: collections.Counter = collections.Counter()
        self.num_things = 0

    def update(
        self,
        gt_panoptic: np.ndarray,
        pred_panoptic: np.ndarray,
        gt_is_crowd: Optional[np.ndarray] = None,
        gt_semantic: Optional[np.ndarray] = None,
    ) -> None:
        """Adds one image; arguments as :meth:`PanopticQuality.update`."""
        gt_ids, gt_segments, pred_ids, pred_segments = pair_to_segments(
            gt_panoptic,
            pred_panoptic,
            self.label_divisor,
            self.ignore_label,
            self.thing_class_ids,
            gt_is_crowd,
            gt_semantic,
        )
        gt_things = {
            i: s
            for i, s in gt_segments.items()
            if s["category_id"] in self._things and not s["iscrowd"]
        }
        pred_things = {
            i: s for i, s in pred_segments.items() if s["category_id"] in self._things
        }
        pred_area = {
            i: a
            for i, a in predicted_areas(pred_ids, pred_segments, None).items()
            if i in pred_things
        }
        intersections = segment_intersections(gt_ids, pred_ids)
        for gt_id, pred_id, _ in iou_matches(
            intersections, gt_things, pred_things, pred_area, same_category=False
        ):
            self.pairs[
                (gt_things[gt_id]["category_id"], pred_things[pred_id]["category_id"])
            ] += 1
        self.num_things += len(gt_things)

    def result(
        self,
        class_names: Optional[Sequence[str]] = None,
        top_confusions: int = DEFAULT_TOP_CONFUSIONS,
    ) -> Dict[str, Any]:
        """{"thing_label_accuracy" (None when no thing was found),
        "things_found", "things" (non-crowd ground-truth things),
        "thing_label_confusions": [{"ground_truth", "predicted", "count"}]}, the
        classes given by id, or by name when ``class_names`` (indexed by id)
        is given."""
        found = sum(self.pairs.values())
        right = sum(n for (gt, pred), n in self.pairs.items() if gt == pred)
        wrong = sorted(
            ((n, gt, pred) for (gt, pred), n in self.pairs.items() if gt != pred),
            key=lambda t: (-t[0], t[1], t[2]),
        )

        def name(class_id: int) -> Any:
            return class_names[class_id] if class_names is not None else class_id

        confusions: List[Dict[str, Any]] = [
            {"ground_truth": name(gt), "predicted": name(pred), "count": n}
            for n, gt, pred in wrong[:top_confusions]
        ]
        return {
            "thing_label_accuracy": right / found if found else None,
            "things_found": found,
            "things": self.num_things,
            "thing_label_confusions": confusions,
        }
