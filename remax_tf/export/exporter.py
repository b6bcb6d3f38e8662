"""Exports a config's model: SavedModel and TFLite files plus their metadata.

:func:`export_from_config` serves the trainer (``--mode export`` and
``export_at_end``); :func:`export_checkpoint` the command line
(``python -m remax_tf.export``): it builds the inference model, restores a
checkpoint strictly
(:func:`remax_tf.inference.restored_model.build_restored_model`, as
``remax-predict`` does) and exports.

Output directory layout::

    DIR/saved_model/              SavedModel (serving_default, serve_batch)
    DIR/tflite/model_fp32.tflite  (and model_fp16 / model_dynamic / model_int8;
                                   one file each, maps out)
    DIR/metadata.json             classes, label divisor, sizes, files, op lists

An export is written whole or not at all: into a temporary sibling of DIR
(:func:`remax_tf.atomic.staged_output_dir`) that replaces the earlier export
only when every file is written, so a failed export never leaves a half
model (a ``saved_model/`` without ``metadata.json``) or mixes two exports.
"""

from __future__ import annotations

import os
from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf

from remax_tf import atomic
from remax_tf.config import ConfigError
from remax_tf.config import placeholder_names
from remax_tf.data import tfrecord
from remax_tf.data.input_pipeline import list_files
from remax_tf.data.preprocessing import resize_image_and_label
from remax_tf.export import tflite as tflite_lib
from remax_tf.export.options import FORMATS
from remax_tf.export.options import SAVED_MODEL
from remax_tf.export.options import TFLITE
from remax_tf.export.saved_model import METADATA_FILE
from remax_tf.export.saved_model import SAVED_MODEL_DIR
from remax_tf.export.saved_model import ServingModule
from remax_tf.export.saved_model import build_serving_module
from remax_tf.export.saved_model import export_descriptor
from remax_tf.export.saved_model import export_saved_model
from remax_tf.export.saved_model import metadata
from remax_tf.export.saved_model import write_metadata
from remax_tf.inference.restored_model import build_restored_model
from remax_tf.protos import config_pb2

TFLITE_DIR = "tflite"
# What an export folder holds: an earlier export of these alone is replaced
# as a whole; metadata.json, written last, marks a complete export.
EXPORT_ENTRIES = (SAVED_MODEL_DIR, TFLITE_DIR, METADATA_FILE)
# Backbones whose models are small enough for phones; their exports add the
# fp32 TFLite file by default (ReMaX-T / ReMaX-S and the demo models).
MOBILE_BACKBONE_PREFIX = "kmax_mobilenet"


def default_formats(config: config_pb2.ExperimentOptions) -> tuple:
    """SavedModel always; TFLite too for MobileNetV3 backbones."""
    if config.model_options.backbone.name.startswith(MOBILE_BACKBONE_PREFIX):
        return FORMATS
    return (SAVED_MODEL,)


def check_formats(formats: Iterable[str]) -> List[str]:
    formats = list(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(
            f"unknown export format(s) {unknown or formats}; known formats: "
            f"{', '.join(FORMATS)}."
        )
    return formats


def training_images(
    config: config_pb2.ExperimentOptions, input_size: Sequence[int]
) -> tflite_lib.RepresentativeImages:
    """Training images of ``train_dataset_options.file_pattern``, resized to
    ``input_size`` (uint8), in file order: the int8 representative dataset."""
    patterns = list(config.train_dataset_options.file_pattern)
    if not patterns:
        raise ConfigError(
            "int8 calibration reads training images: set "
            "train_dataset_options.file_pattern in the config."
        )
    _check_placeholders_set(patterns)
    try:
        files = list_files(patterns)
    except FileNotFoundError as e:
        raise ConfigError(
            f"int8 calibration reads training images: {e} Or use another "
            "--quantize than int8 (none, fp16, dynamic need no data)."
        ) from e
    size = tf.constant([int(s) for s in input_size], tf.int32)

    def images():
        dataset = tf.data.TFRecordDataset(files).map(
            lambda record: tfrecord.parse_example(record, decode_label=False)["image"]
        )
        for image in dataset:
            resized, _ = resize_image_and_label(tf.cast(image, tf.float32), None, size)
            yield np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)

    return images


def _check_placeholders_set(patterns: Sequence[str]) -> None:
    """Raises naming the environment variable of an unset ``${VAR}`` left in
    a file pattern (``python -m remax_tf.export`` keeps them)."""
    for pattern in patterns:
        names = placeholder_names(pattern)
        if names:
            raise ConfigError(
                f"{names[0]} is not set; config field "
                f"train_dataset_options.file_pattern = {pattern!r} needs it for "
                f"int8 calibration (it reads training images). Fix: export "
                f"{names[0]}=<folder> (the folder of the TFRecords), or use "
                "--quantize none (or fp16 / dynamic), which reads no data."
            )


def export_from_config(
    config: config_pb2.ExperimentOptions,
    model,
    output_dir: str,
    *,
    formats: Optional[Sequence[str]] = None,
    quantize: Sequence[str] = (tflite_lib.NONE,),
    tflite_input_size: Optional[Sequence[int]] = None,
    representative_images: Optional[tflite_lib.RepresentativeImages] = None,
    calibration_steps: int = tflite_lib.DEFAULT_CALIBRATION_STEPS,
    float_scopes: Sequence[str] = (),
    float_ops: Sequence[str] = tflite_lib.XNNPACK_FLOAT_OPS,
) -> Dict[str, Any]:
    """Exports a built model with ``config``'s evaluation pre/post-processing.

    Args:
      config: The experiment config (dataset, eval crop, evaluator options).
      model: A built :class:`~remax_tf.model.KMaXDeepLab` with its weights.
      output_dir: Where the files go (created).
      formats: Subset of ``FORMATS``; default :func:`default_formats`.
      quantize: TFLite modes to write (``tflite.QUANTIZE_MODES``).
      tflite_input_size: (height, width) of the TFLite input; default the
        eval crop size.
      representative_images: For ``int8``; default :func:`training_images`.
      calibration_steps: Representative images used for ``int8``.
      float_scopes: ``int8`` only: name scopes kept in float
        (``tflite.FLOAT_DECODER_SCOPES``: the transformer decoder and head).
      float_ops: ``int8`` only: op types kept in float (default
        ``tflite.XNNPACK_FLOAT_OPS``: those XNNPACK cannot run in int8).

    Returns:
      ``{"saved_model": path, "tflite": {file: path}, "metadata": path,
      "num_inference_parameters": n, "tflite_ops": {file: {op: count}}}``
      (keys present for the formats written).
    """
    formats = check_formats(formats or default_formats(config))
    for mode in quantize:
        tflite_lib.check_quantize(mode)
    atomic.check_output_dir(output_dir)
    descriptor = export_descriptor(config)
    module = build_serving_module(config, model, descriptor)
    info = metadata(config, descriptor, module)
    result: Dict[str, Any] = {
        "num_inference_parameters": info["num_inference_parameters"]
    }
    input_size = tuple(tflite_input_size or module.crop_size)
    if TFLITE in formats and tflite_lib.INT8 in quantize:
        # Before anything is written: a missing data folder fails at once.
        representative_images = representative_images or training_images(
            config, input_size
        )
    with atomic.staged_output_dir(
        output_dir, lambda name: name in EXPORT_ENTRIES, last=(METADATA_FILE,)
    ) as staging:
        if SAVED_MODEL in formats:
            export_saved_model(module, staging)
            result[SAVED_MODEL] = os.path.join(output_dir, SAVED_MODEL_DIR)
        if TFLITE in formats:
            files = write_tflite(
                module,
                os.path.join(staging, TFLITE_DIR),
                input_size,
                quantize,
                representative_images=representative_images,
                calibration_steps=calibration_steps,
                float_scopes=float_scopes,
                float_ops=float_ops,
            )
            result[TFLITE] = {
                name: os.path.join(output_dir, TFLITE_DIR, name) for name in files
            }
            result["tflite_ops"] = {name: ops for name, (_, ops) in files.items()}
            info["tflite_input_size"] = list(input_size)
            info["tflite_files"] = sorted(files)
            info["tflite_ops"] = result["tflite_ops"]
        write_metadata(info, staging)
    result["metadata"] = os.path.join(output_dir, METADATA_FILE)
    return result


def write_tflite(
    module: ServingModule,
    directory: str,
    input_size: Sequence[int],
    quantize: Sequence[str],
    **kwargs,
) -> Dict[str, tuple]:
    """Converts for every mode of ``quantize``; file name -> (path, op counts).

    Raises:
      ValueError: if a converted file holds a non-builtin (Flex or custom) op.
    """
    tf.io.gfile.makedirs(directory)
    written: Dict[str, tuple] = {}
    for mode in quantize:
        options = kwargs if mode == tflite_lib.INT8 else {}
        files = tflite_lib.convert_to_tflite(module, input_size, mode, **options)
        for name, content in files.items():
            ops = tflite_lib.op_types(content)
            custom = [op for op in ops if op.startswith("CUSTOM:")]
            if custom:
                raise ValueError(
                    f"{name} holds non-builtin ops {custom}; phones' stock TFLite "
                    "interpreters cannot run it."
                )
            path = os.path.join(directory, name)
            with tf.io.gfile.GFile(path, "wb") as f:
                f.write(content)
            written[name] = (path, ops)
    return written


def export_checkpoint(
    config: config_pb2.ExperimentOptions,
    checkpoint: str,
    output_dir: str,
    **kwargs,
) -> Dict[str, Any]:
    """Builds the inference model, restores ``checkpoint`` and exports.

    ``checkpoint`` is a ``ckpt-N`` prefix, a directory holding a
    ``checkpoint`` file (its latest), or the trainer's ``--model_dir`` (its
    ``<experiment_name>/``), as everywhere (``model_files.find_checkpoint``).
    Every inference variable must be in the checkpoint (a partial export
    would serve initial weights silently); training-only items are skipped.
    Keyword arguments go to :func:`export_from_config`.

    Raises:
      ModelFileError: no checkpoint at ``checkpoint``, or one of another
        config's model.
      OutputPathError: ``output_dir`` cannot be written.
    """
    atomic.check_output_dir(output_dir)
    restored = build_restored_model(
        config, checkpoint, flag="--checkpoint", verb="export"
    )
    result = export_from_config(restored.config, restored.model, output_dir, **kwargs)
    result["restore"] = restored.report.summary()
    return result
