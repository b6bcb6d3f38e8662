"""Evaluation: official-style panoptic quality, mIoU, mask AP, COCO I/O.

* :class:`PanopticEvaluator`: what the trainer feeds batch by batch.
* :class:`PanopticQuality`, :func:`accumulate_image`: PQ with the rules of the
  COCO panopticapi ``pq_compute``.
* :class:`ThingLabelConfusion`: of the things found class-agnostically, which
  label each got (label accuracy, most confused pairs).
* :class:`MeanIoU`, :class:`MaskAP`.
* :mod:`remax_tf.evaluation.coco_panoptic`: COCO panoptic PNG/JSON reading and
  writing, and the ``python -m remax_tf.evaluation.coco_panoptic`` scorer.
"""

import importlib

from remax_tf.evaluation.mask_ap import MaskAP
from remax_tf.evaluation.miou import MeanIoU
from remax_tf.evaluation.panoptic_evaluator import PanopticEvaluator
from remax_tf.evaluation.panoptic_quality import PanopticQuality
from remax_tf.evaluation.panoptic_quality import PQStat
from remax_tf.evaluation.panoptic_quality import accumulate_image
from remax_tf.evaluation.panoptic_quality import deeplab2_to_segments
from remax_tf.evaluation.thing_labels import ThingLabelConfusion
from remax_tf.json_io import write_json_atomic

__all__ = [
    "CocoPanopticWriter",
    "MaskAP",
    "MeanIoU",
    "PQStat",
    "PanopticEvaluator",
    "PanopticQuality",
    "ThingLabelConfusion",
    "accumulate_image",
    "coco_to_deeplab2",
    "deeplab2_to_segments",
    "panoptic_to_coco",
    "pq_compute",
    "write_json_atomic",
]

# Loaded on first use, so that ``python -m remax_tf.evaluation.coco_panoptic``
# does not find its own module already imported by this package.
_COCO_NAMES = (
    "CocoPanopticWriter",
    "coco_to_deeplab2",
    "panoptic_to_coco",
    "pq_compute",
)


def __getattr__(name):
    if name in _COCO_NAMES:
        module = importlib.import_module("remax_tf.evaluation.coco_panoptic")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
