"""Predicting with a TFLite file of ``remax_tf.export.tflite``.

Those files take one uint8 image of a fixed size [1, H, W, 3] through a
``serving_default`` signature. Each image is brought to that size the way
evaluation brings an image to the crop size (``preprocess_for_eval``: resize
keeping the aspect ratio with aligned corners, pad bottom-right), the file
runs, and its maps are cropped to the resized region and resized back to the
image size (``undo_resize_and_pad``). Images already of the input size are
fed unchanged. Two layouts are read:

* one file with everything inside (``model_fp32.tflite``,
  ``model_fp16.tflite``, ``model_dynamic.tflite``): its outputs are the maps;
* the int8 pair: ``model_int8.tflite`` returns the raw logits, which
  ``postprocess.tflite`` (found next to it) turns into the maps.

A uint8 input cannot hold the padding value 127.5 nor the fractional pixels
of a resize: they are rounded, so on images that need resizing predictions
can differ slightly from the SavedModel's. The resize follows the export
metadata's ``preprocess`` entry when the input size is its crop size, else
(and by default) it fits the image into the input size, which is the
evaluation rule of every kMaX config (min = max resize value = crop size).
"""

from __future__ import annotations

import os
from typing import Any
from typing import Dict
from typing import Mapping
from typing import Optional

import numpy as np
import tensorflow as tf

from remax_tf import common
from remax_tf.data import preprocessing
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.export.saved_model import RAW_OUTPUT_KEYS
from remax_tf.export.tflite import POSTPROCESS_FILE
from remax_tf.inference import model_files
from remax_tf.inference.base import OUTPUT_KEYS
from remax_tf.inference.base import Predictor
from remax_tf.inference.base import check_image
from remax_tf.inference.base import select_outputs
from remax_tf.postprocess import undo_resize_and_pad

SERVING_SIGNATURE = "serving_default"
# Export metadata entry with the evaluation resize (see docs/inference.md).
METADATA_PREPROCESS = "preprocess"
_UINT8_MAX = 255


def make_interpreter(path: str, num_threads: Optional[int] = None):
    """A ready interpreter: LiteRT's (``ai_edge_litert``), else ``tf.lite``'s.

    ``tf.lite.Interpreter`` is also the fallback for files LiteRT cannot
    prepare, e.g. with Select-TF (Flex) ops, which only TensorFlow's runs.
    """
    errors = []
    try:
        # ai-edge-litert is optional (setup.py's "tflite" extra); tf.lite is the fallback.
        from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
    except ImportError:
        LiteRTInterpreter = None
    for interpreter_class in (LiteRTInterpreter, tf.lite.Interpreter):
        if interpreter_class is None:
            continue
        try:
            interpreter = interpreter_class(model_path=path, num_threads=num_threads)
            interpreter.allocate_tensors()
            return interpreter
        except (RuntimeError, ValueError) as e:
            errors.append(f"{interpreter_class.__module__}: {e}")
    raise model_files.ModelFileError(
        f"cannot load the TFLite file {path}: " + " | ".join(errors)
    )


class SignatureRunner:
    """A TFLite file's ``serving_default`` signature: named inputs and outputs."""

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        interpreter = make_interpreter(path, num_threads)
        signatures = interpreter.get_signature_list()
        if not signatures:
            raise model_files.ModelFileError(
                f"TFLite file {path} has no signature; export it with "
                "remax_tf.export, whose files carry a serving_default signature."
            )
        key = SERVING_SIGNATURE if SERVING_SIGNATURE in signatures else None
        key = key or sorted(signatures)[0]
        self._runner = interpreter.get_signature_runner(key)
        self.inputs = self._runner.get_input_details()
        self.output_names = tuple(signatures[key]["outputs"])

    def __call__(self, **arrays: np.ndarray) -> Dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._runner(**arrays).items()}


def _preprocess_config(
    input_size, metadata: Mapping[str, Any]
) -> preprocessing.PreprocessConfig:
    """The evaluation resize of the export when the input is its crop size,
    else (and by default) "fit into the input size"."""
    saved = metadata.get(METADATA_PREPROCESS) or {}
    if tuple(saved.get("crop_size", ())) == tuple(input_size):
        return preprocessing.PreprocessConfig(
            crop_size=tuple(input_size),
            min_resize_value=preprocessing.resize_value(saved.get("min_resize_value")),
            max_resize_value=preprocessing.resize_value(saved.get("max_resize_value")),
            resize_factor=saved.get("resize_factor") or None,
        )
    return preprocessing.PreprocessConfig(
        crop_size=tuple(input_size),
        min_resize_value=tuple(input_size),
        max_resize_value=tuple(input_size),
    )


class TFLitePredictor(Predictor):
    """Runs a fixed-size TFLite export on images of any size.

    Args:
      path: The .tflite file (for the int8 export, ``model_int8.tflite``).
      descriptor: The dataset.
      metadata: The export metadata ({} when there is none).
      num_threads: Interpreter threads (None: the runtime's default).

    Raises:
      ModelFileError: a file that is not an image-input export, or raw
        outputs without ``postprocess.tflite`` next to the file.
    """

    kind = model_files.TFLITE

    def __init__(
        self,
        path: str,
        descriptor: DatasetDescriptor,
        metadata: Mapping[str, Any],
        num_threads: Optional[int] = None,
    ) -> None:
        super().__init__(path, descriptor)
        self._model = SignatureRunner(path, num_threads)
        if len(self._model.inputs) != 1:
            raise model_files.ModelFileError(
                f"TFLite file {path} takes {sorted(self._model.inputs)}; expected "
                "one image (is it the post-processing file? pass the model file)."
            )
        ((self._input_name, details),) = self._model.inputs.items()
        shape = tuple(int(s) for s in details["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[-1] != 3:
            raise model_files.ModelFileError(
                f"TFLite file {path}: input {self._input_name!r} has shape "
                f"{list(shape)}; expected [1, H, W, 3]."
            )
        self.input_size = shape[1:3]
        self._input_dtype = np.dtype(details["dtype"])
        self._preprocess = _preprocess_config(self.input_size, metadata)
        self._post = None
        names = set(self._model.output_names)
        if common.PRED_PANOPTIC_KEY in names:
            return
        post_path = os.path.join(os.path.dirname(path), POSTPROCESS_FILE)
        if not set(RAW_OUTPUT_KEYS) <= names or not os.path.isfile(post_path):
            raise model_files.ModelFileError(
                f"TFLite file {path} returns {sorted(names)}: neither the maps "
                f"({common.PRED_PANOPTIC_KEY!r}, ...) nor raw logits with "
                f"{POSTPROCESS_FILE} next to the file (int8 exports of earlier "
                "versions wrote both files: keep them together, or re-export)."
            )
        self._post = SignatureRunner(post_path, num_threads)

    def describe(self) -> str:
        layout = "maps inside" if self._post is None else f"+ {POSTPROCESS_FILE}"
        return (
            f"{super().describe()}, input {list(self.input_size)} "
            f"{self._input_dtype.name}, {layout}"
        )

    def _to_input_size(self, image: np.ndarray):
        """(input [1, H, W, 3], resized size) for ``image``."""
        if image.shape[:2] == tuple(self.input_size):
            return image[None].astype(self._input_dtype), image.shape[:2]
        padded, _, resized = preprocessing.preprocess_for_eval(
            tf.constant(image), None, self._preprocess, label_pad_value=0
        )
        padded = padded.numpy()
        if self._input_dtype == np.uint8:
            padded = np.clip(np.round(padded), 0, _UINT8_MAX)
        return padded[None].astype(self._input_dtype), tuple(resized.shape[:2])

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        image = check_image(image)
        model_input, resized_size = self._to_input_size(image)
        outputs = self._model(**{self._input_name: model_input})
        if self._post is not None:
            outputs = self._post(**{key: outputs[key] for key in RAW_OUTPUT_KEYS})
        maps = {}
        for key in OUTPUT_KEYS:
            if key not in outputs:
                continue
            value = outputs[key].reshape(self.input_size)
            if image.shape[:2] != tuple(self.input_size):
                value = undo_resize_and_pad(
                    value[None], resized_size, image.shape[:2]
                ).numpy()[0]
            maps[key] = value
        return select_outputs(maps, self.source)
