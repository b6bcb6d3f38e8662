"""Distributed input pipelines for training and evaluation, and the data
checks of a run: labels at the door, damaged files and bad labels met later.
"""

from __future__ import annotations

import contextlib
from typing import Iterator
from typing import List
from typing import Tuple

import tensorflow as tf

from remax_tf.data import datasets
from remax_tf.data import label_checks
from remax_tf.data import tfrecord
from remax_tf.data.input_pipeline import build_dataset
from remax_tf.data.input_pipeline import list_files
from remax_tf.errors import DataError
from remax_tf.errors import RemaxError
from remax_tf.protos import config_pb2
from remax_tf.training.errors import TrainingSetupError


def distributed_dataset(strategy, options, is_training: bool):
    """The per-replica input pipelines of ``options``; data problems become
    TrainingSetupError (a DataError stays itself)."""

    def dataset_fn(context):
        return build_dataset(options, is_training=is_training, input_context=context)

    try:
        return strategy.distribute_datasets_from_function(dataset_fn)
    except RemaxError:
        raise
    except (ValueError, KeyError, FileNotFoundError) as e:
        split = "train" if is_training else "eval"
        raise TrainingSetupError(f"{split}_dataset_options: {e}") from e


def _run_inputs(
    config: config_pb2.ExperimentOptions, mode: str
) -> List[Tuple[str, config_pb2.DatasetOptions]]:
    """(field prefix, options) of the datasets ``mode`` reads."""
    inputs = []
    if mode in ("train", "train_and_eval"):
        inputs.append(("train_dataset_options", config.train_dataset_options))
    if mode in ("eval", "train_and_eval", "continuous_eval"):
        inputs.append(("eval_dataset_options", config.eval_dataset_options))
    return inputs


def check_input_labels(config: config_pb2.ExperimentOptions, mode: str) -> None:
    """The door check: the first batch's worth of labels of each dataset
    ``mode`` reads must fit its config dataset (see
    :func:`remax_tf.data.label_checks.check_first_records`).

    Raises:
      DataError: labels of another dataset, or a damaged first record.
      TrainingSetupError: a file pattern matches nothing, unknown dataset.
    """
    for prefix, options in _run_inputs(config, mode):
        if not options.decode_groundtruth_label:
            continue
        patterns = list(options.file_pattern)
        try:
            files = list_files(patterns)
            descriptor = datasets.get_dataset_descriptor(options.dataset)
        except (ValueError, KeyError, FileNotFoundError) as e:
            raise TrainingSetupError(f"{prefix}: {e}") from e
        label_checks.check_first_records(
            files,
            descriptor,
            prefix=prefix,
            patterns=patterns,
            max_records=max(1, min(options.batch_size, label_checks.DOOR_RECORDS)),
        )


def _label_check_message(error: tf.errors.InvalidArgumentError) -> str:
    """The in-graph label check's own sentence, without TensorFlow's frame."""
    message = error.message or str(error)
    start = message.find(label_checks.LABEL_CHECK_MARKER)
    text = message[start + len(label_checks.LABEL_CHECK_MARKER) :]
    for end in ("\n", "\t", " [[", "[Op:"):
        if end in text:
            text = text[: text.index(end)]
    # tf.strings.format quotes string tensors; the assert message escapes them.
    text = text.replace('\\"', '"').replace("\\'", "'")
    return text.strip().rstrip("]").strip()


def _patterns(inputs: List[Tuple[str, config_pb2.DatasetOptions]]) -> str:
    return " / ".join(f"{p}.file_pattern {list(o.file_pattern)}" for p, o in inputs)


@contextlib.contextmanager
def explain_data_errors(config: config_pb2.ExperimentOptions, mode: str) -> Iterator:
    """Turns what tf.data raises mid-run about the data into a DataError:
    a ``DataLossError`` (damaged TFRecord: the files are scanned one by one to
    name the file and byte offset; only on failure, so no cost otherwise) and
    a failed in-graph label check (the image and value, plus the file
    pattern). The run stops: skipping a damaged file or a bad label would
    silently train on something else than configured."""
    inputs = _run_inputs(config, mode)
    try:
        yield
    except tf.errors.DataLossError as e:
        num_files = 0
        for prefix, options in inputs:
            patterns = list(options.file_pattern)
            files = list_files(patterns)
            num_files += len(files)
            bad = tfrecord.find_corrupt_record(files)
            if bad is not None:
                source = f"{prefix}.file_pattern {patterns}"
                raise tfrecord.damaged_file_error(source, bad, e, len(files)) from e
        raise tfrecord.damaged_file_error(_patterns(inputs), None, e, num_files) from e
    except tf.errors.InvalidArgumentError as e:
        if label_checks.LABEL_CHECK_MARKER not in (e.message or str(e)):
            raise
        raise DataError(
            f"{_patterns(inputs)}: {_label_check_message(e)} The run stops rather "
            "than skipping the image."
        ) from e
