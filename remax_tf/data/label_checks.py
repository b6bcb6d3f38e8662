"""Checks that panoptic labels fit the config's dataset.

The input pipeline never trains on garbage: a label whose semantic id the
dataset does not know (a TFRecord built for another dataset, or an instance
id >= label divisor that overflowed into the class id), a negative value, or a
stuff pixel carrying an instance id stops the pipeline with an error naming
the image.

Two layers:

* :func:`check_first_records` (the door): before a training or evaluation run
  builds its model, the first batch's worth of records (``batch_size``, at
  most :data:`DOOR_RECORDS`, in sorted file order) are decoded with numpy and
  checked; a mismatch raises :class:`~remax_tf.errors.DataError` naming the
  file, the image, the offending values, the config field and the dataset the
  records do fit, if any. Cheap: a few records, no image decoding.
* :func:`check_panoptic_label` (in the graph): every sample is checked as it
  is read; a failure raises ``tf.errors.InvalidArgumentError`` whose message
  starts with :data:`LABEL_CHECK_MARKER`, which the trainer turns into a
  ``DataError`` (:func:`remax_tf.training.inputs.explain_data_errors`).
"""

from __future__ import annotations

import dataclasses
from typing import List
from typing import Sequence

import numpy as np
import tensorflow as tf

from remax_tf import common
from remax_tf.data import datasets
from remax_tf.data import tfrecord
from remax_tf.errors import DataError

# Starts the message of a failed in-graph label check.
LABEL_CHECK_MARKER = "label check failed: "
# At most this many records are checked at the door.
DOOR_RECORDS = 16


def _membership_table(ids: Sequence[int]) -> tf.Tensor:
    size = max(ids) + 1 if ids else 1
    table = [False] * size
    for i in ids:
        table[i] = True
    return tf.constant(table)


def _is_member(values: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    size = tf.shape(table, out_type=values.dtype)[0]
    inside = (values >= 0) & (values < size)
    return inside & tf.gather(table, tf.clip_by_value(values, 0, size - 1))


def check_panoptic_label(
    label: tf.Tensor,
    *,
    dataset_name: str,
    label_divisor: int,
    ignore_label: int,
    class_ids: Sequence[int],
    thing_ids: Sequence[int],
    image_name: tf.Tensor | str,
) -> tf.Tensor:
    """Returns ``label`` once it has passed the checks (graph-mode asserts).

    Args:
      label: [H, W] int32 panoptic label, semantic * divisor + instance.
      dataset_name: For messages.
      label_divisor, ignore_label: The dataset's encoding.
      class_ids: Every real semantic id (void excluded).
      thing_ids: Semantic ids of thing classes.
      image_name: Names the image in the error.

    Raises:
      tf.errors.InvalidArgumentError (when run): the message names the image,
      the bad value and the likely fix.
    """
    # The name goes into the template itself: as a format input it would be
    # printed quoted and escaped.
    quoted_name = "'" + dataset_name.replace("{", "{{").replace("}", "}}") + "'"
    flat = tf.reshape(label, [-1])
    semantic = flat // label_divisor
    instance = flat % label_divisor
    known = _is_member(semantic, _membership_table(list(class_ids) + [ignore_label]))
    stuff = _is_member(
        semantic, _membership_table([c for c in class_ids if c not in set(thing_ids)])
    )
    unknown = (flat < 0) | ~known
    stuff_instance = stuff & (instance != 0)

    def first(mask):
        return tf.gather(flat, tf.argmax(tf.cast(mask, tf.int32)))

    rebuild = (
        "Check `dataset:` in the config matches the TFRecords, or rebuild them with "
        "python -m remax_tf.data.build_<dataset>_data."
    )

    def check(mask, message, values):
        """Fails, printing ``message`` with ``values``, when ``mask`` has a pixel."""
        text = tf.strings.format(LABEL_CHECK_MARKER + message, values)
        return tf.debugging.Assert(~tf.reduce_any(mask), [text])

    unknown_check = check(
        unknown,
        "image {}: label value {} decodes to semantic id {} (label divisor "
        "{}), which dataset "
        + quoted_name
        + " does not have (classes {}..{}, ignore {}): "
        "either the record was built for another dataset or an instance id "
        ">= the label divisor overflowed into the class id. " + rebuild,
        (
            image_name,
            first(unknown),
            first(unknown) // label_divisor,
            label_divisor,
            min(class_ids),
            max(class_ids),
            ignore_label,
        ),
    )
    stuff_check = check(
        stuff_instance,
        "image {}: label value {} gives stuff class {} the instance id {}; "
        "stuff pixels must have instance id 0 in dataset "
        + quoted_name
        + ". "
        + rebuild,
        (
            image_name,
            first(stuff_instance),
            first(stuff_instance) // label_divisor,
            first(stuff_instance) % label_divisor,
        ),
    )
    with tf.control_dependencies([unknown_check, stuff_check]):
        return tf.identity(label)


@dataclasses.dataclass(frozen=True)
class LabeledRecord:
    """A record's panoptic label as numpy, and where it came from."""

    path: str
    image_name: str
    label: np.ndarray  # [H, W] int32


def read_labels(
    files: Sequence[str], max_records: int, source: str = ""
) -> List[LabeledRecord]:
    """The labels of the first ``max_records`` records of ``files`` (in
    order), without decoding the images; ``source`` (the config field) starts
    the message of a damaged file.

    Raises:
      DataError: a file is damaged (truncated or corrupt record).
    """
    features = {
        common.KEY_ENCODED_LABEL: tf.io.FixedLenFeature((), tf.string, ""),
        common.KEY_IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, ""),
        common.KEY_IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64, 0),
        common.KEY_IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64, 0),
    }
    records: List[LabeledRecord] = []
    for path in files:
        if len(records) >= max_records:
            break
        dataset = tf.data.TFRecordDataset(path).take(max_records - len(records))
        try:
            for serialized in dataset:
                parsed = tf.io.parse_single_example(serialized, features)
                height = int(parsed[common.KEY_IMAGE_HEIGHT])
                width = int(parsed[common.KEY_IMAGE_WIDTH])
                raw = parsed[common.KEY_ENCODED_LABEL].numpy()
                if not raw or len(raw) != 4 * height * width:
                    continue  # No label, or not DeepLab2's raw int32: left to the pipeline.
                label = np.frombuffer(raw, "<i4").reshape(height, width)
                name = (
                    parsed[common.KEY_IMAGE_FILENAME].numpy().decode("utf-8", "replace")
                )
                records.append(LabeledRecord(path, name, label))
        except tf.errors.DataLossError as e:
            raise tfrecord.corrupt_file_error([path], e, source or path) from e
    return records


def _problem(record: LabeledRecord, descriptor: datasets.DatasetDescriptor) -> str:
    """What is wrong with ``record`` under ``descriptor``, or ""."""
    label = record.label
    divisor = descriptor.panoptic_label_divisor
    if label.min() < 0:
        return f"label value {int(label.min())} is negative"
    semantic, instance = label // divisor, label % divisor
    ids = np.unique(semantic)
    known = set(descriptor.thing_stuff_class_ids) | {descriptor.ignore_label}
    unknown = [int(i) for i in ids if int(i) not in known]
    if unknown:
        bad = int(label[semantic == unknown[-1]].flat[0])
        listed = ", ".join(str(i) for i in unknown[:8]) + (
            ", ..." if len(unknown) > 8 else ""
        )
        return (
            f"semantic ids {listed} (e.g. label value {bad} = {bad // divisor} * "
            f"{divisor} + {bad % divisor}) are not classes of it"
        )
    stuff = np.isin(semantic, descriptor.stuff_class_ids) & (instance != 0)
    if stuff.any():
        bad = int(label[stuff].flat[0])
        return (
            f"stuff class {bad // divisor} carries instance id {bad % divisor} "
            f"(label value {bad}), but stuff pixels have instance id 0 (wrong "
            "label divisor?)"
        )
    return ""


def _datasets_that_fit(records: Sequence[LabeledRecord], exclude: str) -> List[str]:
    """Registered datasets under which every record passes."""
    fits = []
    for name in datasets.known_datasets():
        if name == exclude:
            continue
        descriptor = datasets.get_dataset_descriptor(name)
        if all(not _problem(r, descriptor) for r in records):
            fits.append(
                f"'{name}' ({descriptor.num_classes} classes, label divisor "
                f"{descriptor.panoptic_label_divisor})"
            )
    return fits


def check_first_records(
    files: Sequence[str],
    descriptor: datasets.DatasetDescriptor,
    *,
    prefix: str,
    patterns: Sequence[str],
    max_records: int = DOOR_RECORDS,
) -> None:
    """Raises :class:`DataError` unless the labels of the first ``max_records``
    records of ``files`` fit ``descriptor`` (see the module docstring).

    Args:
      files: The files of ``patterns``, sorted.
      descriptor: The dataset the config names.
      prefix: The config's options, e.g. ``"train_dataset_options"``.
      patterns: Its ``file_pattern``, for the message.
      max_records: How many records to check.
    """
    records = read_labels(files, max_records, f"{prefix}.file_pattern {list(patterns)}")
    config_side = (
        f"the config's dataset '{descriptor.name}' ({prefix}.dataset: "
        f"{descriptor.num_classes} classes, semantic ids 0..{descriptor.num_classes - 1}"
        f", ignore {descriptor.ignore_label}, label divisor "
        f"{descriptor.panoptic_label_divisor})"
    )
    for record in records:
        problem = _problem(record, descriptor)
        if not problem:
            continue
        fits = _datasets_that_fit(records, exclude=descriptor.name)
        hint = (
            f" These records fit dataset {' or '.join(fits)}, not "
            f"{descriptor.num_classes}-class '{descriptor.name}'."
            if fits
            else ""
        )
        raise DataError(
            f"{prefix}.file_pattern {list(patterns)}: the TFRecords do not fit "
            f"{config_side}: in {record.path}, image '{record.image_name}': "
            f"{problem}.{hint} Fix: point {prefix}.file_pattern at TFRecords built "
            f"for '{descriptor.name}', or set {prefix}.dataset to the dataset "
            "these records were built for (a new class count needs a new "
            "model_dir)."
        )
    if records and all(
        (r.label // descriptor.panoptic_label_divisor == descriptor.ignore_label).all()
        for r in records
    ):
        raise DataError(
            f"{prefix}.file_pattern {list(patterns)}: every pixel of the first "
            f"{len(records)} labels is void (semantic id {descriptor.ignore_label} "
            f"under label divisor {descriptor.panoptic_label_divisor} of "
            f"{config_side}), starting with {records[0].path}: nothing to learn "
            "from. Fix: rebuild the TFRecords with the dataset's label divisor "
            "(python -m remax_tf.data.build_<dataset>_data), or point "
            f"{prefix}.file_pattern at labelled data."
        )
