"""From a decoded record to a model sample (the role of DeepLab2's
``PanopticSampleGenerator``), for training and for evaluation.

Training: check label -> augment (``preprocessing.augment_for_training``) ->
optional panoptic copy-paste with a second decoded record augmented at
``copy_paste.scale`` times the scale range -> targets.
Evaluation: check label -> resize to range and pad bottom-right -> targets,
plus the raw label and the sizes needed to undo the resize.
"""

from __future__ import annotations

import dataclasses
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Tuple

import tensorflow as tf

from remax_tf import common
from remax_tf.data import copy_paste as copy_paste_lib
from remax_tf.data import label_checks
from remax_tf.data import preprocessing
from remax_tf.data import sample_targets


@dataclasses.dataclass(frozen=True)
class CopyPasteConfig:
    """``PanopticCopyPasteOptions`` as plain values."""

    scale: float
    thing_option: str = "random"
    stuff_option: str = "random"
    void_option: str = "none"


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """Everything a sample function needs, as plain values.

    Attributes:
      dataset_name: For messages.
      label_divisor, ignore_label: The dataset's label encoding.
      class_ids: Real semantic ids (void excluded).
      thing_ids: Semantic ids of thing classes.
      preprocess: Geometric and photometric preprocessing.
      copy_paste: Panoptic copy-paste, None for none.
      max_thing_id: Length of the thing-class target.
      small_instance_threshold: 0 to disable small-instance weights.
      small_instance_weight: Their semantic loss weight.
      decode_label: False for unlabeled evaluation data.
    """

    dataset_name: str
    label_divisor: int
    ignore_label: int
    class_ids: Tuple[int, ...]
    thing_ids: Tuple[int, ...]
    preprocess: preprocessing.PreprocessConfig
    copy_paste: Optional[CopyPasteConfig] = None
    max_thing_id: int = 128
    small_instance_threshold: int = 0
    small_instance_weight: float = 1.0
    decode_label: bool = True

    @property
    def stuff_ids(self) -> Tuple[int, ...]:
        things = set(self.thing_ids)
        return tuple(c for c in self.class_ids if c not in things)

    @property
    def void_value(self) -> int:
        return self.ignore_label * self.label_divisor


def _checked_label(record: Mapping[str, tf.Tensor], spec: SampleSpec) -> tf.Tensor:
    return label_checks.check_panoptic_label(
        record["label"],
        dataset_name=spec.dataset_name,
        label_divisor=spec.label_divisor,
        ignore_label=spec.ignore_label,
        class_ids=spec.class_ids,
        thing_ids=spec.thing_ids,
        image_name=record["image_name"],
    )


def _targets(label: tf.Tensor, spec: SampleSpec, image_name) -> Dict[str, tf.Tensor]:
    return sample_targets.build_targets(
        label,
        label_divisor=spec.label_divisor,
        ignore_label=spec.ignore_label,
        thing_ids=spec.thing_ids,
        max_thing_id=spec.max_thing_id,
        small_instance_threshold=spec.small_instance_threshold,
        small_instance_weight=spec.small_instance_weight,
        image_name=image_name,
    )


def training_sample(
    record: Mapping[str, tf.Tensor],
    seed: tf.Tensor,
    spec: SampleSpec,
    paste_record: Optional[Mapping[str, tf.Tensor]] = None,
) -> Dict[str, tf.Tensor]:
    """One augmented training sample with its kMaX targets."""
    seeds = preprocessing.split_seed(seed, 3)
    image, label = preprocessing.augment_for_training(
        record["image"], _checked_label(record, spec), spec.preprocess,
        spec.void_value, seeds[0],
    )  # fmt: skip
    if spec.copy_paste is not None:
        if paste_record is None:
            raise ValueError("copy-paste is enabled but no second record was given.")
        padding = copy_paste_lib.paste_padding_value(
            spec.ignore_label, spec.label_divisor
        )
        paste_image, paste_label = preprocessing.augment_for_training(
            paste_record["image"],
            _checked_label(paste_record, spec),
            spec.preprocess.scaled(spec.copy_paste.scale),
            padding,
            seeds[1],
        )
        image, label = copy_paste_lib.panoptic_copy_paste(
            image,
            label,
            paste_image,
            paste_label,
            label_divisor=spec.label_divisor,
            ignore_label=spec.ignore_label,
            thing_ids=spec.thing_ids,
            stuff_ids=spec.stuff_ids,
            thing_option=spec.copy_paste.thing_option,
            stuff_option=spec.copy_paste.stuff_option,
            void_option=spec.copy_paste.void_option,
            seed=seeds[2],
            image_name=record["image_name"],
        )
    sample = {common.IMAGE: image}
    sample.update(_targets(label, spec, record["image_name"]))
    return sample


def eval_sample(
    record: Mapping[str, tf.Tensor], spec: SampleSpec
) -> Dict[str, tf.Tensor]:
    """One evaluation sample: resized and padded, with the raw label."""
    label = _checked_label(record, spec) if spec.decode_label else None
    image, padded_label, resized = preprocessing.preprocess_for_eval(
        record["image"], label, spec.preprocess, spec.void_value
    )
    sample = {
        common.IMAGE: image,
        common.IMAGE_NAME: record["image_name"],
        common.RESIZED_IMAGE: resized,
        common.RESIZED_SIZE: tf.shape(resized)[:2],
        common.GT_SIZE_RAW: tf.stack([record["height"], record["width"]]),
    }
    if label is not None:
        sample.update(_targets(padded_label, spec, record["image_name"]))
        _, crowd = sample_targets.crowd_and_thing_masks(
            label, spec.label_divisor, spec.thing_ids
        )
        sample[common.GT_PANOPTIC_RAW] = label
        sample[common.GT_SEMANTIC_RAW] = label // spec.label_divisor
        sample[common.GT_IS_CROWD_RAW] = tf.cast(crowd, tf.int32)
    return sample
