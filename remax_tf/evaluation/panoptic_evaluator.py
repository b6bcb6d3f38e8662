"""The metrics accumulator: PQ, mIoU and optionally mask AP per dataset.

No model here, and the metrics are numpy: the trainer's evaluation loop
(``remax_tf.training.evaluator``) and the benchmarks feed it.

Feed it numpy sample and prediction dicts (keys of ``remax_tf.common``) batch
by batch, then read :meth:`PanopticEvaluator.result` or write it as JSON::

  evaluator = PanopticEvaluator(descriptor, config.evaluator_options)
  for sample, prediction in batches:
      evaluator.update(sample, prediction)
  evaluator.write_json("eval/results.json")

Ground truth is read at the original image size when the sample carries it
(``panoptic_raw``, ``semantic_raw``, ``is_crowd_raw``, ``size_raw``);
predictions should be at that size already (use
:func:`remax_tf.postprocess.undo_preprocessing` in the eval step). If a
prediction is still at the padded input size and the sample has
``resized_size`` (or ``resized_image``), it is cropped and resized back here
with that function (TensorFlow, DeepLab2's nearest-neighbour rule).
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence

import numpy as np

from remax_tf import common
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.evaluation.mask_ap import MaskAP
from remax_tf.evaluation.miou import MeanIoU
from remax_tf.evaluation.panoptic_quality import PanopticQuality
from remax_tf.evaluation.thing_labels import ThingLabelConfusion
from remax_tf.json_io import write_json_atomic
from remax_tf.postprocess.undo_preprocessing import undo_resize_and_pad
from remax_tf.protos import evaluator_pb2

_GROUPS = (("All", ""), ("Things", "_things"), ("Stuff", "_stuff"))
# Suffix of the class-agnostic thing metrics (pq_things_class_agnostic, ...).
CLASS_AGNOSTIC = "_things_class_agnostic"


def merge_thing_classes(
    panoptic: np.ndarray, thing_ids: Sequence[int], divisor: int, merged_id: int
) -> np.ndarray:
    """The panoptic map with every thing class relabelled ``merged_id``.

    Instances keep distinct ids (1..n in the order of their old labels; crowd
    keeps instance 0), so PQ over the merged class scores masks and ignores
    their labels: "masks fine, labels wrong" shows as a high class-agnostic
    things PQ next to a low things PQ.
    """
    panoptic = np.asarray(panoptic).astype(np.int64)
    is_thing = np.isin(panoptic // divisor, list(thing_ids))
    instance = panoptic % divisor
    out = np.where(is_thing, merged_id * divisor, panoptic)
    keyed = is_thing & (instance > 0)
    values, inverse = np.unique(panoptic[keyed], return_inverse=True)
    if len(values) >= divisor:
        raise ValueError(
            f"{len(values)} thing instances in one image do not fit the label "
            f"divisor {divisor} once merged into one class."
        )
    out[keyed] += 1 + inverse.reshape(-1)
    return out


def _first(mapping: Mapping[str, Any], *keys: str) -> Optional[np.ndarray]:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return np.asarray(mapping[key])
    return None


class PanopticEvaluator:
    """Accumulates official-style PQ, mIoU and (optionally) mask AP."""

    def __init__(
        self,
        descriptor: DatasetDescriptor,
        options: Optional[evaluator_pb2.EvaluatorOptions] = None,
        compute_mask_ap: Optional[bool] = None,
    ) -> None:
        """Args:
        descriptor: The evaluated dataset.
        options: ``EvaluatorOptions``; only ``compute_mask_ap`` is read here
          (post-processing options belong to the post-processor).
        compute_mask_ap: Overrides ``options.compute_mask_ap``.
        """
        options = options or evaluator_pb2.EvaluatorOptions()
        self.descriptor = descriptor
        things = set(descriptor.thing_class_ids)
        self.categories = {c: c in things for c in descriptor.thing_stuff_class_ids}
        self.panoptic_quality = PanopticQuality(
            self.categories,
            descriptor.panoptic_label_divisor,
            descriptor.ignore_label,
        )
        # Things merged into one class (the first thing id), stuff unchanged.
        self._merged_id = min(things) if things else None
        self.class_agnostic = (
            PanopticQuality(
                {
                    self._merged_id: True,
                    **{c: False for c, t in self.categories.items() if not t},
                },
                descriptor.panoptic_label_divisor,
                descriptor.ignore_label,
            )
            if things
            else None
        )
        # Which label each class-agnostically found thing got.
        self.thing_labels = (
            ThingLabelConfusion(
                descriptor.thing_class_ids,
                descriptor.panoptic_label_divisor,
                descriptor.ignore_label,
            )
            if things
            else None
        )
        self.miou = MeanIoU(
            descriptor.num_classes,
            descriptor.ignore_label,
            class_ids=descriptor.thing_stuff_class_ids,
        )
        if compute_mask_ap is None:
            compute_mask_ap = options.compute_mask_ap
        self.mask_ap = MaskAP(descriptor.thing_class_ids) if compute_mask_ap else None

    def reset(self) -> None:
        self.panoptic_quality.reset()
        if self.class_agnostic is not None:
            self.class_agnostic.reset()
        if self.thing_labels is not None:
            self.thing_labels.reset()
        self.miou.reset()
        if self.mask_ap is not None:
            self.mask_ap.reset()

    def _ground_truth(self, sample: Mapping[str, Any]):
        raw = _first(sample, common.GT_PANOPTIC_RAW)
        is_raw = raw is not None
        if is_raw:
            panoptic = raw
            semantic = _first(sample, common.GT_SEMANTIC_RAW)
            crowd = _first(sample, common.GT_IS_CROWD_RAW)
        else:
            panoptic = _first(sample, common.GT_PANOPTIC_KEY)
            semantic = _first(sample, common.GT_SEMANTIC_KEY)
            crowd = _first(sample, common.GT_IS_CROWD)
        if panoptic is None:
            raise KeyError(
                f"the sample has neither {common.GT_PANOPTIC_RAW!r} nor "
                f"{common.GT_PANOPTIC_KEY!r}; evaluate with ground-truth labels."
            )
        if panoptic.ndim == 2:
            panoptic = panoptic[None]
            semantic = None if semantic is None else semantic[None]
            crowd = None if crowd is None else crowd[None]
        return panoptic, semantic, crowd, is_raw

    def _to_original_size(
        self, maps: np.ndarray, sample: Mapping[str, Any], b: int, label_shape, size
    ) -> np.ndarray:
        if maps.shape == tuple(size):
            return maps
        if maps.shape == tuple(label_shape):
            # Padded to the batch's label size like the raw labels.
            return maps[: size[0], : size[1]]
        resized_sizes = _first(sample, common.RESIZED_SIZE)
        resized_image = _first(sample, common.RESIZED_IMAGE)
        if resized_sizes is not None:
            resized_size = [int(s) for s in resized_sizes[b]]
        elif resized_image is not None:
            resized_size = resized_image.shape[-3:-1]
        else:
            raise ValueError(
                f"prediction of shape {maps.shape} does not match the ground truth "
                f"{tuple(size)}; undo the resize and padding first "
                "(remax_tf.postprocess.undo_preprocessing) or pass "
                f"{common.RESIZED_SIZE!r} in the sample."
            )
        return undo_resize_and_pad(maps[None], resized_size, size).numpy()[0]

    def update(self, sample: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
        """Adds a batch.

        Args:
          sample: Numpy sample dict with the ground truth (``panoptic_raw`` or
            ``panoptic_gt``; optional semantic, crowd and ``size_raw``).
          prediction: Numpy prediction dict with ``panoptic_pred`` and
            optionally ``semantic_pred`` (else the panoptic map's semantic),
            ``semantic_scores`` and ``instance_scores`` (mask AP scores).
        """
        gt_panoptic, gt_semantic, gt_crowd, is_raw = self._ground_truth(sample)
        pred_panoptic = _first(prediction, common.PRED_PANOPTIC_KEY)
        if pred_panoptic is None:
            raise KeyError(
                f"the prediction dict lacks {common.PRED_PANOPTIC_KEY!r}; run the "
                "post-processor (remax_tf.postprocess.PanopticPostProcessor)."
            )
        if pred_panoptic.ndim == 2:
            prediction = {k: np.asarray(v)[None] for k, v in prediction.items()}
            pred_panoptic = pred_panoptic[None]
        pred_semantic = _first(prediction, common.PRED_SEMANTIC_KEY)
        semantic_scores = _first(prediction, common.PRED_SEMANTIC_SCORES_KEY)
        instance_scores = _first(prediction, common.PRED_INSTANCE_SCORES_KEY)
        sizes = _first(sample, common.GT_SIZE_RAW)
        names = _first(sample, common.IMAGE_NAME)
        divisor = self.descriptor.panoptic_label_divisor
        label_shape = gt_panoptic.shape[1:3]

        for b in range(gt_panoptic.shape[0]):
            if sizes is not None and is_raw:
                # Raw labels of a batch may be padded to a common size.
                height, width = (int(s) for s in sizes[b])
            else:
                height, width = gt_panoptic.shape[1:3]
            size = (height, width)
            name = str(names[b]) if names is not None else str(b)
            gt_pan = gt_panoptic[b, :height, :width]
            gt_sem = None if gt_semantic is None else gt_semantic[b, :height, :width]
            crowd = None if gt_crowd is None else gt_crowd[b, :height, :width]

            pan = self._to_original_size(pred_panoptic[b], sample, b, label_shape, size)
            self.panoptic_quality.update(gt_pan, pan, crowd, gt_sem, image_name=name)
            if self.class_agnostic is not None:
                self._update_class_agnostic(gt_pan, pan, crowd, gt_sem, name)
            if self.thing_labels is not None:
                self.thing_labels.update(gt_pan, pan, crowd, gt_sem)

            sem = (
                pan // divisor
                if pred_semantic is None
                else self._to_original_size(
                    pred_semantic[b], sample, b, label_shape, size
                )
            )
            self.miou.update(gt_pan // divisor if gt_sem is None else gt_sem, sem)

            if self.mask_ap is not None:
                scores = self._segment_scores(
                    pan, semantic_scores, instance_scores, sample, b, label_shape, size
                )
                self.mask_ap.update_from_panoptic(
                    gt_pan, pan, divisor, scores, crowd, gt_sem
                )

    def _update_class_agnostic(self, gt_pan, pan, crowd, gt_sem, name) -> None:
        things = self.descriptor.thing_class_ids
        divisor = self.descriptor.panoptic_label_divisor
        merged = self._merged_id
        if gt_sem is not None:
            gt_sem = np.where(np.isin(gt_sem, list(things)), merged, gt_sem)
        self.class_agnostic.update(
            merge_thing_classes(gt_pan, things, divisor, merged),
            merge_thing_classes(pan, things, divisor, merged),
            crowd,
            gt_sem,
            image_name=name,
        )

    def _segment_scores(
        self, pan, semantic_scores, instance_scores, sample, b, label_shape, size
    ) -> Dict[int, float]:
        """DeepLab2's instance score: mean class confidence x mean mask score."""
        values, inverse = np.unique(pan, return_inverse=True)
        inverse = inverse.reshape(-1)
        areas = np.bincount(inverse, minlength=len(values))
        score = np.ones(len(values))
        for maps in (semantic_scores, instance_scores):
            if maps is None:
                continue
            per_pixel = self._to_original_size(
                maps[b], sample, b, label_shape, size
            ).reshape(-1)
            score *= np.bincount(inverse, weights=per_pixel, minlength=len(values)) / (
                np.maximum(areas, 1)
            )
        return dict(zip(values.tolist(), score.tolist()))

    def result(self) -> Dict[str, Any]:
        """The metrics, fractions in [0, 1].

        Returns:
          {"pq", "sq", "rq", "pq_things", ..., "rq_stuff",
          "pq_things_class_agnostic" (things merged into one class: masks
          scored, labels ignored; also sq_, rq_), "thing_label_accuracy" (of
          the things those masks found, the fraction labelled right; None when
          none was found), "things_found", "things", "thing_label_confusions"
          (the most frequent wrong (ground truth, predicted) class pairs; see
          :mod:`remax_tf.evaluation.thing_labels`), "miou",
          "num_images", "panoptic_quality": panopticapi-style dict,
          "per_class": {semantic id: {"name", "isthing", "pq", "sq", "rq",
          "tp", "fp", "fn", "iou"}}, and "mask_ap" when enabled}.
        """
        panoptic = self.panoptic_quality.result()
        result: Dict[str, Any] = {}
        for group, suffix in _GROUPS:
            for metric in ("pq", "sq", "rq"):
                result[metric + suffix] = panoptic[group][metric]
        if self.class_agnostic is not None:
            agnostic = self.class_agnostic.result()["Things"]
            for metric in ("pq", "sq", "rq"):
                result[metric + CLASS_AGNOSTIC] = agnostic[metric]
        if self.thing_labels is not None:
            result.update(self.thing_labels.result(self.descriptor.class_names))
        result["miou"] = self.miou.result()
        result["num_images"] = self.panoptic_quality.num_images
        result["panoptic_quality"] = panoptic
        ious = self.miou.per_class_iou()
        per_class = {}
        for class_id, isthing in self.categories.items():
            stat = self.panoptic_quality.stat.per_class.get(class_id)
            per_class[class_id] = {
                "name": self.descriptor.class_names[class_id],
                "isthing": isthing,
                **panoptic["per_class"][class_id],
                "tp": 0 if stat is None else stat.tp,
                "fp": 0 if stat is None else stat.fp,
                "fn": 0 if stat is None else stat.fn,
                "iou": ious.get(class_id),
            }
        result["per_class"] = per_class
        if self.mask_ap is not None:
            result["mask_ap"] = self.mask_ap.result()
        return result

    def write_json(self, path: str) -> Dict[str, Any]:
        """Writes :meth:`result` to ``path`` atomically and returns it."""
        result = self.result()
        write_json_atomic(path, result)
        return result
