"""The serving graph: uint8 image -> panoptic maps, and its SavedModel export.

:class:`ServingModule` holds one :meth:`ServingModule.serve` that runs, in one
graph, exactly what evaluation runs:

1. the evaluation preprocessing of ``remax_tf.data.preprocessing``
   (``preprocess_for_eval``: resize the longer side to the eval crop with
   aligned corners, pad bottom-right with 127.5);
2. the inference model (``training=False``: no kMaX auxiliary semantic head,
   no ReMaX semantic heads, no ReMask);
3. the post-processing layer of ``remax_tf.postprocess`` built from the
   config's ``evaluator_options`` (mask-wise merge, area limits);
4. the undo of the resize and padding (``undo_preprocessing``), so that every
   map has the input image's size.

Its thin wrappers are the SavedModel signatures: ``serving_default`` takes
one uint8 image [H, W, C] of any size, ``serve_batch`` a batch of same-sized
images [B, H, W, C]. As ``remax_tf.predict`` reads image files, C may be 3
(RGB), 1 (grey, repeated to RGB) or 4 (RGBA, alpha dropped). Any other rank
or channel count fails with an ``InvalidArgumentError`` naming the expected
shape and the shape given (SavedModel signatures do not check shapes
themselves; a wrong dtype is refused by TensorFlow, naming uint8). The
TFLite export (:mod:`remax_tf.export.tflite`) traces the same ``serve`` at a
fixed [1, H, W, 3] input size, without these checks.

The module tracks only the model's inference variables (the SavedModel
therefore holds nothing training-only); the Keras model itself is not saved,
only the traced functions, so the SavedModel loads with plain TensorFlow.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any
from typing import Dict
from typing import Optional
from typing import Sequence

import tensorflow as tf

from remax_tf import common
from remax_tf.config.dataset_choice import EVAL
from remax_tf.config.dataset_choice import dataset_descriptor
from remax_tf.data import datasets
from remax_tf.data import preprocessing
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.data.input_pipeline import sample_spec
from remax_tf.postprocess import build_post_processor
from remax_tf.postprocess import undo_preprocessing
from remax_tf.postprocess.undo_preprocessing import MAP_KEYS
from remax_tf.postprocess.undo_preprocessing import undo_is_identity
from remax_tf.protos import config_pb2

SERVING_DEFAULT = "serving_default"
SERVE_BATCH = "serve_batch"
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "metadata.json"
# Raw model outputs returned next to the maps (at the padded crop's stride-4
# resolution), for parity checks and custom post-processing.
RAW_OUTPUT_KEYS = (
    common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
    common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
)
OUTPUT_KEYS = tuple(MAP_KEYS) + RAW_OUTPUT_KEYS
# Input channels the signatures take (RGB, grey, RGBA) and the channel index
# each of the three RGB channels is read from.
_GREY_CHANNELS = 1
_INPUT_CHANNELS = (3, _GREY_CHANNELS, 4)
_GREY_TO_RGB = (0, 0, 0)
_RGB = (0, 1, 2)


def as_rgb(images: tf.Tensor, rank: int, signature: str, expected: str) -> tf.Tensor:
    """``images`` checked to have ``rank`` and 1, 3 or 4 channels, as RGB.

    Grey is repeated to RGB and the alpha of RGBA dropped, as
    ``remax_tf.inference.images.load_image`` does. The checks run in the
    graph before anything reads ``images``: a wrong shape fails with an
    ``InvalidArgumentError`` saying ``<signature> expects <expected>; got
    shape [...]`` instead of an error deep inside the model.
    """
    shape = tf.shape(images)
    # The last dimension, or 0 (refused) for a scalar.
    channels = tf.concat([[0], shape], 0)[-1]
    good_channels = tf.reduce_any(tf.equal(channels, _INPUT_CHANNELS))
    check = tf.debugging.Assert(
        tf.logical_and(tf.equal(tf.size(shape), rank), good_channels),
        [
            f"{signature} expects {expected} (or 1 grey / 4 RGBA channels); got shape",
            shape,
        ],
        summarize=8,
        name=f"{signature}_input_check",
    )
    with tf.control_dependencies([check]):
        images = tf.ensure_shape(images, [None] * rank)
    index = tf.where(tf.equal(channels, _GREY_CHANNELS), _GREY_TO_RGB, _RGB)
    rgb = tf.gather(images, index, axis=rank - 1)
    return tf.ensure_shape(rgb, [None] * (rank - 1) + [3])


def _size_of(image: tf.Tensor) -> tf.Tensor:
    """(height, width) of an [H, W, C] image: a constant when the shape is
    static (fixed-size exports), so that an identity undo can be skipped
    (``undo_is_identity``)."""
    if image.shape[:2].is_fully_defined():
        return tf.constant(image.shape[:2].as_list(), tf.int32)
    return tf.shape(image)[:2]


def _eval_dataset_options(config: config_pb2.ExperimentOptions):
    """The dataset options whose evaluation preprocessing the export uses."""
    if config.eval_dataset_options.crop_size:
        return config.eval_dataset_options
    if config.train_dataset_options.crop_size:
        return config.train_dataset_options
    raise ValueError(
        "export needs the evaluation crop size: set eval_dataset_options.crop_size "
        "(or train_dataset_options.crop_size) in the config."
    )


def export_descriptor(config: config_pb2.ExperimentOptions) -> DatasetDescriptor:
    """The dataset whose labels the exported model predicts: the config's
    evaluation dataset (:func:`remax_tf.config.dataset_choice.dataset_name`).

    Raises:
      ConfigError: the config names no dataset.
    """
    return dataset_descriptor(config, EVAL)


def eval_preprocess_config(
    config: config_pb2.ExperimentOptions, descriptor: DatasetDescriptor
) -> preprocessing.PreprocessConfig:
    """The evaluation :class:`PreprocessConfig` of ``config`` (as the input
    pipeline builds it)."""
    options = _eval_dataset_options(config)
    return sample_spec(descriptor, options, is_training=False).preprocess


def _trace(function, spec):
    """A concrete function of ``function`` for one input ``spec``.

    The functions are not attributes of the module: ``tf.saved_model.save``
    would trace every attached ``tf.function`` again. Autograph is off: the
    model and the post-processing use TensorFlow control flow explicitly, and
    tracing is several times faster without it.
    """
    return tf.function(
        function, input_signature=[spec], autograph=False
    ).get_concrete_function()


class ServingModule(tf.Module):
    """uint8 images -> panoptic, semantic and instance maps at the input size.

    Args:
      model: A built :class:`~remax_tf.model.KMaXDeepLab`.
      preprocess: The evaluation preprocessing (crop size, resize range).
      post_processor: A :class:`~remax_tf.postprocess.PanopticPostProcessor`
        whose ``output_size`` is ``preprocess.crop_size``.
    """

    def __init__(
        self,
        model,
        preprocess: preprocessing.PreprocessConfig,
        post_processor,
        name: str = "remax_serving",
    ) -> None:
        super().__init__(name=name)
        if tuple(post_processor.output_size) != tuple(preprocess.crop_size):
            raise ValueError(
                f"post-processor output_size {post_processor.output_size} must be "
                f"the crop size {preprocess.crop_size}."
            )
        if not model.built:
            raise ValueError(
                "build the model before exporting: call it once, e.g. "
                "model(tf.zeros([1, H, W, 3]), training=False)."
            )
        self.crop_size = tuple(int(s) for s in preprocess.crop_size)
        # Exactly the inference variables are tracked (and saved); the model
        # and post-processor are held by untracked callables, so that the
        # SavedModel holds only traced functions and these variables.
        self.inference_variables = list(model.inference_variables)
        self._run_model = functools.partial(model.__call__, training=False)
        self._post_process = post_processor.__call__
        self._preprocess_config = preprocess

    @property
    def preprocess_config(self) -> preprocessing.PreprocessConfig:
        """The evaluation preprocessing ``serve`` applies."""
        return self._preprocess_config

    def _preprocess(self, images: tf.Tensor):
        """Evaluation preprocessing of each image; returns (padded [B, crop,
        3] float32, resized size [2] shared by the batch)."""
        config = self._preprocess_config

        def one(image):
            padded, _, resized = preprocessing.preprocess_for_eval(
                image, None, config, label_pad_value=0
            )
            return padded, _size_of(resized)

        if images.shape[0] == 1:
            padded, resized_size = one(images[0])
            return padded[tf.newaxis], resized_size
        padded, resized_sizes = tf.map_fn(
            one,
            images,
            fn_output_signature=(
                tf.TensorSpec(list(self.crop_size) + [3], tf.float32),
                tf.TensorSpec([2], tf.int32),
            ),
        )
        return padded, resized_sizes[0]

    def logits(self, images: tf.Tensor):
        """Preprocessing and model: ``(raw predictions, resized size, input
        size)``; the raw predictions are ``RAW_OUTPUT_KEYS`` in float32."""
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be [B, H, W, 3], got {images.shape}.")
        original_size = _size_of(images[0])
        padded, resized_size = self._preprocess(images)
        predictions = self._run_model(padded)
        raw = {key: tf.cast(predictions[key], tf.float32) for key in RAW_OUTPUT_KEYS}
        return raw, resized_size, original_size

    def maps(
        self, raw: Dict[str, tf.Tensor], resized_size: tf.Tensor, original_size
    ) -> Dict[str, tf.Tensor]:
        """Post-processing and the undo of the preprocessing: the ``MAP_KEYS``
        maps at ``original_size``."""
        maps = self._post_process(raw)
        if undo_is_identity(maps[MAP_KEYS[0]].shape[1:3], resized_size, original_size):
            return {key: maps[key] for key in MAP_KEYS}
        # TFLite's builtin RESIZE_NEAREST_NEIGHBOR takes no int32, so the maps
        # are undone as float32: exact, since every id stays below 2**24
        # (COCO's largest panoptic id is 134 * 256).
        undone = undo_preprocessing(
            {key: tf.cast(maps[key], tf.float32) for key in MAP_KEYS},
            resized_size,
            original_size,
        )
        return {key: tf.cast(undone[key], maps[key].dtype) for key in MAP_KEYS}

    def serve(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Runs preprocessing, model, post-processing and the undo.

        Args:
          images: [B, H, W, 3] uint8 (or float in [0, 255]) images of one size.

        Returns:
          ``panoptic_pred`` (``semantic * label_divisor + instance``),
          ``semantic_pred``, ``instance_pred`` [B, H, W] int32 and
          ``instance_scores``, ``semantic_scores`` [B, H, W] float32, at the
          input size; plus the raw ``pixel_space_mask_logits`` [B, h, w, NQ]
          and ``transformer_class_logits`` [B, NQ, NC + 1] of the padded crop.
        """
        raw, resized_size, original_size = self.logits(images)
        outputs = self.maps(raw, resized_size, original_size)
        outputs.update(raw)
        return outputs

    def serve_image(self, image: tf.Tensor) -> Dict[str, tf.Tensor]:
        """``serving_default``: one [H, W, C] uint8 image (C = 3, 1 or 4; see
        :func:`as_rgb`), outputs unbatched."""
        image = as_rgb(image, 3, SERVING_DEFAULT, "one uint8 image [height, width, 3]")
        return {key: value[0] for key, value in self.serve(image[None]).items()}

    def serve_batch(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
        """``serve_batch``: [B, H, W, C] uint8 images of one size."""
        images = as_rgb(
            images, 4, SERVE_BATCH, "uint8 images [batch, height, width, 3]"
        )
        return self.serve(images)

    def signatures(self) -> Dict[str, Any]:
        """The SavedModel signatures (concrete functions of the wrappers).

        Their inputs have an unknown rank: TensorFlow would not check a
        declared shape, and graph optimisation would trust it, so the checks
        of :func:`as_rgb` need the true rank at run time.
        """
        return {
            SERVING_DEFAULT: _trace(
                self.serve_image, tf.TensorSpec(None, tf.uint8, "image")
            ),
            SERVE_BATCH: _trace(
                self.serve_batch, tf.TensorSpec(None, tf.uint8, "images")
            ),
        }

    # Fixed-size traces for TFLite (every shape static).
    def _image_spec(self, input_size: Sequence[int]) -> tf.TensorSpec:
        height, width = (int(s) for s in input_size)
        return tf.TensorSpec([1, height, width, 3], tf.uint8, "image")

    def fixed_size_function(self, input_size: Sequence[int]):
        """``serve`` for one [1, H, W, 3] uint8 image: everything in one graph."""
        return _trace(self.serve, self._image_spec(input_size))

    def fixed_size_logits_function(self, input_size: Sequence[int]):
        """Preprocessing and model only, for one [1, H, W, 3] uint8 image."""

        def logits(image):
            return self.logits(image)[0]

        return _trace(logits, self._image_spec(input_size))

    def fixed_size_postprocess_function(
        self, input_size: Sequence[int], logits_function=None
    ):
        """Post-processing and undo for the raw outputs of
        :meth:`fixed_size_logits_function` (same ``input_size``; pass that
        function if it is at hand, to save tracing it again)."""
        height, width = (int(s) for s in input_size)
        logits = logits_function or self.fixed_size_logits_function(input_size)
        specs = {
            key: tf.TensorSpec(logits.structured_outputs[key].shape, tf.float32, key)
            for key in RAW_OUTPUT_KEYS
        }
        # The resize of a fixed input size is a constant.
        _, _, resized = preprocessing.preprocess_for_eval(
            tf.zeros([height, width, 3], tf.uint8), None, self._preprocess_config, 0
        )
        resized_size = tf.constant(resized.shape[:2].as_list(), tf.int32)

        def post(raw):
            return self.maps(raw, resized_size, tf.constant([height, width]))

        return _trace(post, specs)


def build_serving_module(
    config: config_pb2.ExperimentOptions,
    model,
    descriptor: Optional[DatasetDescriptor] = None,
) -> ServingModule:
    """The :class:`ServingModule` of ``model`` with ``config``'s evaluation
    preprocessing and post-processing."""
    descriptor = descriptor or export_descriptor(config)
    preprocess = eval_preprocess_config(config, descriptor)
    post_processor = build_post_processor(
        config.evaluator_options, descriptor, preprocess.crop_size
    )
    return ServingModule(model, preprocess, post_processor)


def metadata(
    config: config_pb2.ExperimentOptions,
    descriptor: DatasetDescriptor,
    module: ServingModule,
) -> Dict[str, Any]:
    """What a user of the exported files needs to read the maps (and what
    ``remax_tf.predict`` reads: ``descriptor``, ``dataset``, ``preprocess``)."""
    preprocess = module.preprocess_config
    return {
        "experiment_name": config.experiment_name,
        "backbone": config.model_options.backbone.name,
        "dataset": descriptor.name,
        "descriptor": datasets.descriptor_to_json(descriptor),
        "preprocess": {
            "crop_size": list(preprocess.crop_size),
            "min_resize_value": _optional_list(preprocess.min_resize_value),
            "max_resize_value": _optional_list(preprocess.max_resize_value),
            "resize_factor": preprocess.resize_factor,
        },
        "crop_size": list(module.crop_size),
        "label_divisor": descriptor.panoptic_label_divisor,
        # The dataset's ignore_label under the name of DeepLab2's post-processor
        # argument; a key of the export format (docs/export.md), kept.
        "void_label": descriptor.ignore_label,
        "thing_class_ids": list(descriptor.thing_class_ids),
        "stuff_class_ids": list(descriptor.stuff_class_ids),
        "class_names": list(descriptor.class_names),
        "num_inference_parameters": int(
            sum(v.shape.num_elements() for v in module.inference_variables)
        ),
        "outputs": list(OUTPUT_KEYS),
    }


def _optional_list(values):
    return None if values is None else [int(v) for v in values]


def export_saved_model(module: ServingModule, output_dir: str) -> str:
    """Saves ``module`` with its two signatures; returns the SavedModel path."""
    path = os.path.join(output_dir, SAVED_MODEL_DIR)
    tf.saved_model.save(module, path, signatures=module.signatures())
    return path


def write_metadata(info: Dict[str, Any], output_dir: str) -> str:
    path = os.path.join(output_dir, METADATA_FILE)
    tf.io.gfile.makedirs(output_dir)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(info, f, indent=2)
    return path
