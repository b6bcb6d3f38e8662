"""DeepLab2-format TFRecords: one ``tf.train.Example`` per image.

The keys and label encoding are DeepLab2's (``data/data_utils.py``
``create_tfexample`` and ``SegmentationDecoder``; keys in ``remax_tf.common``).

Writing is atomic per shard: a shard is written under a temporary name and
renamed when complete, so an interrupted conversion never leaves a file that
looks like a finished shard.

Reading a damaged file (cut in the middle of a record, or a record whose
checksum fails) stops training or evaluation: :func:`corrupt_file_error`
finds the file and the byte offset and turns TensorFlow's ``DataLossError``
into a :class:`~remax_tf.errors.DataError`. The run stops rather than skipping
the rest of the file, because skipping would silently train on a subset.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf

from remax_tf import common
from remax_tf.errors import DataError

SHARD_PATTERN = "{split}-{index:05d}-of-{count:05d}.tfrecord"
_TMP_SUFFIX = ".incomplete"
# TensorFlow's record reader: "truncated record at N" (the file ends inside
# the record that starts at byte N) or "corrupted record at N" (checksum).
_BAD_RECORD = re.compile(r"(truncated|corrupted) record at (\d+)")


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(
    image_bytes: bytes,
    image_format: str,
    filename: str,
    height: int,
    width: int,
    panoptic_label: Optional[np.ndarray],
) -> tf.train.Example:
    """Builds the tf.train.Example of one image.

    Args:
      image_bytes: Encoded JPEG or PNG, 3 channels.
      image_format: "jpeg" or "png".
      filename: Image name without extension.
      height: Image height.
      width: Image width.
      panoptic_label: [height, width] panoptic map, semantic * divisor +
        instance; stored as raw int32 bytes in C order. None for unlabeled data.

    Returns:
      The example.
    """
    feature = {
        common.KEY_ENCODED_IMAGE: _bytes(image_bytes),
        common.KEY_IMAGE_FILENAME: _bytes(filename.encode("utf-8")),
        common.KEY_IMAGE_FORMAT: _bytes(image_format.encode("utf-8")),
        common.KEY_IMAGE_HEIGHT: _int64(height),
        common.KEY_IMAGE_WIDTH: _int64(width),
        common.KEY_IMAGE_CHANNELS: _int64(3),
    }
    if panoptic_label is not None:
        label = np.asarray(panoptic_label)
        if label.shape != (height, width):
            raise ValueError(
                f"{filename}: label shape {label.shape} differs from the image size "
                f"{(height, width)}."
            )
        feature[common.KEY_ENCODED_LABEL] = _bytes(
            np.ascontiguousarray(label, dtype="<i4").tobytes()
        )
        feature[common.KEY_LABEL_FORMAT] = _bytes(b"raw")
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_example(
    serialized: tf.Tensor, decode_label: bool = True
) -> Dict[str, tf.Tensor]:
    """Parses one serialized example (graph mode, usable in tf.data).

    Returns:
      A dict with ``image`` [H, W, 3] uint8, ``image_name`` string, ``height``
      and ``width`` int32 and, when ``decode_label``, ``label`` [H, W] int32.
    """
    string = tf.io.FixedLenFeature((), tf.string)
    integer = tf.io.FixedLenFeature((), tf.int64)
    features = {
        common.KEY_ENCODED_IMAGE: string,
        common.KEY_IMAGE_FILENAME: string,
        common.KEY_IMAGE_FORMAT: string,
        common.KEY_IMAGE_HEIGHT: integer,
        common.KEY_IMAGE_WIDTH: integer,
        common.KEY_IMAGE_CHANNELS: integer,
    }
    if decode_label:
        features[common.KEY_ENCODED_LABEL] = string
    parsed = tf.io.parse_single_example(serialized, features)
    image = tf.io.decode_image(
        parsed[common.KEY_ENCODED_IMAGE],
        channels=3,
        dtype=tf.uint8,
        expand_animations=False,
    )
    image.set_shape([None, None, 3])
    height = tf.cast(parsed[common.KEY_IMAGE_HEIGHT], tf.int32)
    width = tf.cast(parsed[common.KEY_IMAGE_WIDTH], tf.int32)
    result = {
        "image": image,
        "image_name": parsed[common.KEY_IMAGE_FILENAME],
        "height": height,
        "width": width,
    }
    if decode_label:
        flat = tf.io.decode_raw(parsed[common.KEY_ENCODED_LABEL], tf.int32)
        result["label"] = tf.reshape(flat, tf.stack([height, width]))
    return result


def shard_paths(output_dir: str, split: str, num_shards: int) -> List[str]:
    return [
        os.path.join(
            output_dir, SHARD_PATTERN.format(split=split, index=i, count=num_shards)
        )
        for i in range(num_shards)
    ]


def write_shard(path: str, examples: Iterable[tf.train.Example]) -> int:
    """Writes ``examples`` to ``path`` atomically; returns how many."""
    tmp = path + _TMP_SUFFIX
    count = 0
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for example in examples:
                # Sorted map keys: byte-identical shards from every process.
                writer.write(example.SerializeToString(deterministic=True))
                count += 1
    except BaseException:
        # A failed shard leaves nothing behind, not even its temporary file.
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        raise
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return count


def read_examples(pattern: str) -> List[Dict[str, np.ndarray]]:
    """Eagerly reads and parses every example matching ``pattern`` (tests,
    tools). Returns numpy dicts in file order."""
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord file matches {pattern!r}")
    out = []
    for record in tf.data.TFRecordDataset(files):
        parsed = parse_example(record)
        out.append({k: v.numpy() for k, v in parsed.items()})
    return out


@dataclasses.dataclass(frozen=True)
class CorruptRecord:
    """Where a TFRecord file stops being readable."""

    path: str
    kind: str  # "truncated" or "corrupted"; "unreadable" when TF gives no offset
    offset: int  # byte offset of the bad record; -1 when unknown
    size: int  # file size in bytes
    detail: str  # TensorFlow's message, first line

    def describe(self) -> str:
        """What is wrong, without the path."""
        where = f" at byte {self.offset}" if self.offset >= 0 else ""
        if self.kind == "truncated":
            return (
                f"the file ends inside the record that starts{where} (file size "
                f"{self.size} bytes): an interrupted write, copy or download"
            )
        if self.kind == "corrupted":
            return f"the record{where} fails its checksum (file size {self.size} bytes)"
        return f"unreadable ({self.detail})"


def _data_loss_detail(error: tf.errors.DataLossError) -> str:
    message = (error.message or str(error)).strip()
    match = _BAD_RECORD.search(message)
    return match.group(0) if match else message.splitlines()[0][:200]


def find_corrupt_record(files: Sequence[str]) -> Optional[CorruptRecord]:
    """Reads ``files`` one by one to the end (in C++, no parsing) and returns
    the first that cannot be read, or None. Costs a pass over the data: call
    it only after a ``DataLossError``."""
    for path in files:
        try:
            tf.data.TFRecordDataset(path).reduce(
                tf.constant(0, tf.int64), lambda count, _: count + 1
            )
        except tf.errors.DataLossError as e:
            detail = _data_loss_detail(e)
            match = _BAD_RECORD.search(detail)
            return CorruptRecord(
                path=path,
                kind=match.group(1) if match else "unreadable",
                offset=int(match.group(2)) if match else -1,
                size=tf.io.gfile.stat(path).length,
                detail=detail,
            )
    return None


def damaged_file_error(
    source: str,
    bad: Optional[CorruptRecord],
    error: tf.errors.DataLossError,
    num_files: int,
) -> DataError:
    """The :class:`DataError` for ``error`` met while reading the
    ``num_files`` files of ``source`` (a config field or a path), ``bad`` the
    damaged file found among them (None: none fails when read alone)."""
    if bad is None:
        problem = (
            f"{source}: reading failed ({_data_loss_detail(error)}), yet none of its "
            f"{num_files} file(s) fails when read alone"
        )
    else:
        where = "" if source == bad.path else f"{source}: "
        problem = f"{where}the TFRecord file {bad.path} is damaged: {bad.describe()}"
    return DataError(
        f"{problem}. The run stops here rather than skipping the rest of the file. "
        "Fix: copy the file again or rebuild the TFRecords (python -m "
        "remax_tf.data.build_<dataset>_data), or leave the file out of file_pattern."
    )


def corrupt_file_error(
    files: Sequence[str], error: tf.errors.DataLossError, source: str
) -> DataError:
    """:func:`damaged_file_error` after scanning ``files`` for the damaged one."""
    return damaged_file_error(source, find_corrupt_record(files), error, len(files))
