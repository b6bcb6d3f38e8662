"""The input pipeline: ``DatasetOptions`` -> batched ``tf.data.Dataset``.

This is the builder where the config stops: it translates the proto into a
plain :class:`~remax_tf.data.samples.SampleSpec` and wires the stream, which
follows DeepLab2 ``data/dataloader/input_reader.py``:

* training: shuffled files, repeated, interleaved; a shuffle buffer of
  records; with panoptic copy-paste a second, independently shuffled stream
  zipped alongside; per-sample augmentation and targets; batches of the
  per-replica size (drop remainder); prefetch;
* evaluation: files and records in order, no augmentation, padded batches
  (raw labels differ in size), no drop.

Every random choice of a sample comes from stateless ops seeded by
``[base seed, position in the stream]``, so with a ``seed`` (and
``deterministic``, which also fixes the element order under parallelism) two
runs yield identical batches. Without a seed the base seed is drawn at build
time.
"""

from __future__ import annotations

import random
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import tensorflow as tf

from remax_tf import common
from remax_tf.data import autoaugment
from remax_tf.data import copy_paste as copy_paste_lib
from remax_tf.data import datasets
from remax_tf.data import preprocessing
from remax_tf.data import samples
from remax_tf.data import tfrecord

# DeepLab2 input_reader.py: _NUM_INPUTS_PROCESSED_CONCURRENTLY (training).
TRAIN_INTERLEAVE_CYCLE_LENGTH = 32
# Offsets that give each shuffle of the pipeline its own seed.
_FILE_SHUFFLE, _RECORD_SHUFFLE, _PASTE_FILE_SHUFFLE, _PASTE_RECORD_SHUFFLE = 1, 2, 3, 4
# Spreads the seeds of the input pipelines of a multi-worker run.
_PIPELINE_SEED_STRIDE = 7919


def list_files(patterns: Sequence[str]) -> List[str]:
    """Sorted files matching the glob ``patterns``; each must match something."""
    if not patterns:
        raise ValueError(
            "dataset options have no file_pattern; set file_pattern to the TFRecord "
            'shards, e.g. file_pattern: "/data/coco/train-*.tfrecord".'
        )
    files = set()
    for pattern in patterns:
        matches = tf.io.gfile.glob(pattern)
        if not matches:
            raise FileNotFoundError(
                f"file_pattern {pattern!r} matches no file. Fix the path in the "
                "config, or build the TFRecords first (python -m "
                "remax_tf.data.build_coco_data / build_cityscapes_data / "
                "build_ade20k_data / build_custom_data; see docs/datasets.md)."
            )
        files.update(matches)
    return sorted(files)


def check_not_empty(files: Sequence[str], patterns: Sequence[str]) -> None:
    """Raises if no file holds a record: a repeated empty stream would make the
    training loop wait forever instead of failing."""
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(path).take(1):
                return
        except tf.errors.DataLossError as e:
            raise tfrecord.corrupt_file_error([path], e, path) from e
    raise ValueError(
        f"file_pattern {list(patterns)} matches {len(files)} file(s) but none holds "
        "an example (empty or interrupted shards?). Fix: rebuild the TFRecords."
    )


def _pair(values: Sequence[int], field: str):
    values = tuple(int(v) for v in values)
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(
            f"{field} must hold two positive numbers (height, width), got "
            f"{list(values)}."
        )
    return values


def sample_spec(
    descriptor: datasets.DatasetDescriptor, options, is_training: bool
) -> samples.SampleSpec:
    """Translates ``DatasetOptions`` into a plain sample spec (validated)."""
    augmentations = options.augmentations
    policy = augmentations.autoaugment_policy_name if is_training else ""
    if policy:
        autoaugment.get_policy(policy)
    preprocess = preprocessing.PreprocessConfig(
        crop_size=_pair(options.crop_size, "crop_size"),
        min_resize_value=preprocessing.resize_value(options.min_resize_value),
        max_resize_value=preprocessing.resize_value(options.max_resize_value),
        resize_factor=options.resize_factor or None,
        min_scale_factor=augmentations.min_scale_factor if is_training else 1.0,
        max_scale_factor=augmentations.max_scale_factor if is_training else 1.0,
        scale_factor_step_size=augmentations.scale_factor_step_size,
        autoaugment_policy=policy,
    )
    if is_training:
        preprocessing.scale_count(
            preprocess.min_scale_factor,
            preprocess.max_scale_factor,
            preprocess.scale_factor_step_size,
        )
    copy_paste = None
    paste = augmentations.panoptic_copy_paste
    if (
        is_training
        and augmentations.HasField("panoptic_copy_paste")
        and paste.panoptic_copy_paste_scale > 0
    ):
        copy_paste = samples.CopyPasteConfig(
            scale=paste.panoptic_copy_paste_scale,
            thing_option=copy_paste_lib.check_option(
                "panoptic_copy_paste_thing_option",
                paste.panoptic_copy_paste_thing_option,
            ),
            stuff_option=copy_paste_lib.check_option(
                "panoptic_copy_paste_stuff_option",
                paste.panoptic_copy_paste_stuff_option,
            ),
            void_option=copy_paste_lib.check_option(
                "panoptic_copy_paste_void_option",
                paste.panoptic_copy_paste_void_option,
            ),
        )
    if options.max_thing_id <= 0:
        raise ValueError(f"max_thing_id must be positive, got {options.max_thing_id}.")
    if is_training and not options.decode_groundtruth_label:
        raise ValueError(
            "decode_groundtruth_label is false in the training dataset options; "
            "training needs labels."
        )
    return samples.SampleSpec(
        dataset_name=descriptor.name,
        label_divisor=descriptor.panoptic_label_divisor,
        ignore_label=descriptor.ignore_label,
        class_ids=tuple(sorted(descriptor.thing_stuff_class_ids)),
        thing_ids=descriptor.thing_class_ids,
        preprocess=preprocess,
        copy_paste=copy_paste,
        max_thing_id=options.max_thing_id,
        small_instance_threshold=(
            options.small_instance_threshold
            if options.increase_small_instance_weights
            else 0
        ),
        small_instance_weight=options.small_instance_weight,
        decode_label=options.decode_groundtruth_label,
    )


def _record_stream(
    files: Sequence[str],
    *,
    is_training: bool,
    deterministic: bool,
    file_seed: int,
    record_seed: int,
    shuffle_buffer_size: int,
    input_context: Optional[tf.distribute.InputContext],
) -> tf.data.Dataset:
    """Serialized examples: shuffled and endless when training."""
    dataset = tf.data.Dataset.from_tensor_slices(list(files))
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_files = pipelines > 1 and len(files) >= pipelines
    if shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    if is_training:
        dataset = dataset.shuffle(
            len(files), seed=file_seed, reshuffle_each_iteration=True
        ).repeat()
        dataset = dataset.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), TRAIN_INTERLEAVE_CYCLE_LENGTH),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    else:
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=1)
    if pipelines > 1 and not shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=record_seed)
    return dataset


def _padding_values(element_spec: Dict[str, tf.TensorSpec], spec: samples.SampleSpec):
    """Values that pad eval samples of different raw sizes into one batch."""
    special = {
        common.GT_PANOPTIC_RAW: spec.void_value,
        common.GT_SEMANTIC_RAW: spec.ignore_label,
        common.GT_THING_ID_MASK_KEY: -1,
        common.GT_THING_ID_CLASS_KEY: -1,
    }
    values = {}
    for key, tensor_spec in element_spec.items():
        if tensor_spec.dtype == tf.string:
            values[key] = tf.constant("", tf.string)
        else:
            values[key] = tf.constant(special.get(key, 0), tensor_spec.dtype)
    return values


def build_dataset(
    dataset_options,
    *,
    is_training: bool,
    input_context: Optional[tf.distribute.InputContext] = None,
) -> tf.data.Dataset:
    """Builds the batched input pipeline of ``dataset_options``.

    Args:
      dataset_options: A ``DatasetOptions`` proto (``remax_tf.protos.dataset_pb2``).
      is_training: Training stream (augmented, shuffled, endless) or
        evaluation stream (resized and padded, in order, one pass).
      input_context: From ``tf.distribute``; the batch size is then the
        per-replica share of ``batch_size`` and the files (or records) are
        sharded over the input pipelines.

    Returns:
      A dataset of dicts keyed by ``remax_tf.common`` names: ``IMAGE``
      [B, H, W, 3] float32 in [0, 255] at the crop size, ``GT_SEMANTIC_KEY``,
      ``GT_PANOPTIC_KEY``, ``GT_IS_CROWD``, ``GT_THING_ID_MASK_KEY`` [B, H, W],
      ``GT_THING_ID_CLASS_KEY`` [B, max_thing_id], ``SEMANTIC_LOSS_WEIGHT_KEY``
      [B, H, W]; evaluation adds ``IMAGE_NAME``, ``RESIZED_IMAGE``,
      ``RESIZED_SIZE``, ``GT_SIZE_RAW`` and the raw ``GT_*_RAW`` labels
      (padded to the largest raw size of the batch).

    Raises:
      FileNotFoundError: a file pattern matches nothing.
      KeyError: unknown dataset.
      ValueError: invalid options.
      DataError: the first record of a file cannot be read (damaged file).
    """
    if not dataset_options.dataset:
        raise ValueError(
            'dataset options lack `dataset`; set e.g. dataset: "coco_panoptic" or '
            "the path of a descriptor .json written by build_custom_data."
        )
    descriptor = datasets.get_dataset_descriptor(dataset_options.dataset)
    spec = sample_spec(descriptor, dataset_options, is_training)
    files = list_files(list(dataset_options.file_pattern))
    check_not_empty(files, list(dataset_options.file_pattern))
    batch_size = dataset_options.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if batch_size <= 0:
        raise ValueError(
            f"batch_size must be positive, got {dataset_options.batch_size}."
        )

    deterministic = bool(dataset_options.deterministic) or not is_training
    if dataset_options.seed or dataset_options.deterministic:
        base_seed = int(dataset_options.seed)
    else:
        base_seed = random.SystemRandom().randrange(2**31)
    if input_context is not None:
        base_seed += _PIPELINE_SEED_STRIDE * input_context.input_pipeline_id
    stream_args = dict(
        is_training=is_training,
        deterministic=deterministic,
        shuffle_buffer_size=max(1, dataset_options.shuffle_buffer_size),
        input_context=input_context,
    )
    records = _record_stream(
        files,
        file_seed=base_seed + _FILE_SHUFFLE,
        record_seed=base_seed + _RECORD_SHUFFLE,
        **stream_args,
    )
    map_args = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if is_training:
        seed_head = tf.constant(base_seed, tf.int64)
        dataset = records.enumerate()
        if spec.copy_paste is not None:
            paste = _record_stream(
                files,
                file_seed=base_seed + _PASTE_FILE_SHUFFLE,
                record_seed=base_seed + _PASTE_RECORD_SHUFFLE,
                **stream_args,
            )
            dataset = tf.data.Dataset.zip((dataset, paste))

            def make(indexed, paste_record):
                index, record = indexed
                return samples.training_sample(
                    tfrecord.parse_example(record),
                    tf.stack([seed_head, index]),
                    spec,
                    tfrecord.parse_example(paste_record),
                )
        else:

            def make(index, record):
                return samples.training_sample(
                    tfrecord.parse_example(record), tf.stack([seed_head, index]), spec
                )

        dataset = dataset.map(make, **map_args)
        dataset = dataset.batch(batch_size, drop_remainder=True)
    else:
        dataset = records.map(
            lambda record: samples.eval_sample(
                tfrecord.parse_example(record, decode_label=spec.decode_label), spec
            ),
            **map_args,
        )
        dataset = dataset.padded_batch(
            batch_size, padding_values=_padding_values(dataset.element_spec, spec)
        )
    prefetch = dataset_options.prefetch_size
    if prefetch != 0:
        dataset = dataset.prefetch(tf.data.AUTOTUNE if prefetch < 0 else prefetch)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options)
