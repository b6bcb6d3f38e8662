"""DeepLab2-format TFRecords: one ``tf.train.Example`` per image (SPEC 3.2).

Writing is atomic per shard: a shard is written under a temporary name and
renamed when complete, so an interrupted conversion never leaves a file that
looks like a finished shard.
"""

from __future__ import annotations

import os
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional

import numpy as np
import tensorflow as tf

from remax_tf import common

SHARD_PATTERN = "{split}-{index:05d}-of-{count:05d}.tfrecord"
_TMP_SUFFIX = ".incomplete"


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
