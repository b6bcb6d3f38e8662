"""The post-processing layer: raw kMaX outputs -> panoptic, semantic, instance maps.

:class:`PanopticPostProcessor` takes plain arguments; :func:`build_post_processor`
is the one place that reads ``EvaluatorOptions``. Outputs follow DeepLab2's
``PostProcessor`` (``model/post_processor/max_deeplab.py``):

* ``panoptic_pred``: ``semantic * label_divisor + instance`` in dataset ids,
  void pixels ``ignore_label * label_divisor``; thing instance ids are
  ``instance_pred`` values, stuff instances 0;
* ``semantic_pred``: the threshold-free semantic map (for mIoU);
* ``instance_pred``: 1 + the slot (pixel-wise) or slot rank (mask-wise) of
  every pixel, DeepLab2's mask-id map, before confidence filtering;
* ``instance_scores`` and ``semantic_scores``: per-pixel mask and class
  confidences (DeepLab2 uses them for instance AP).

All maps have the size given as ``output_size`` (the padded input size); use
:func:`remax_tf.postprocess.undo_resize_and_pad` to go back to the original
image size.
"""

from __future__ import annotations

from typing import Dict
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.config.validation import POST_PROCESSING_RESOLUTIONS
from remax_tf.config.validation import POST_PROCESSINGS
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.postprocess.maskwise import maskwise_assignment
from remax_tf.postprocess.panoptic_merge import merge_to_panoptic
from remax_tf.postprocess.pixelwise import argmax_semantic
from remax_tf.postprocess.pixelwise import pixelwise_assignment
from remax_tf.postprocess.slot_predictions import nearest_pixel_weights
from remax_tf.postprocess.slot_predictions import resize_mask_logits
from remax_tf.postprocess.slot_predictions import upsample_nearest_maps
from remax_tf.protos import evaluator_pb2

# The allowed values live with the config's validation (one list each).
POST_PROCESSING_METHODS = POST_PROCESSINGS
PIXELWISE, MASKWISE = POST_PROCESSINGS
# Where the decisions are taken: INPUT is DeepLab2's rule and exact;
# MODEL_OUTPUT decides at the logits' resolution (stride 4) and upsamples the
# resulting maps, which skips the resize and per-pixel softmax of all NQ
# channels at full size.
INPUT_RESOLUTION, MODEL_OUTPUT_RESOLUTION = POST_PROCESSING_RESOLUTIONS

# Defaults are DeepLab2's evaluator.proto defaults (EvaluatorOptions and
# MaskwisePostProcessingOptions); the kMaX configs override several of them
# (DeepLab2's configs/*/kmax_deeplab/*.textproto, evaluator_options).
_DEFAULTS = evaluator_pb2.EvaluatorOptions()
_MASKWISE_DEFAULTS = evaluator_pb2.EvaluatorOptions.MaskwisePostProcessingOptions()


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class PanopticPostProcessor(tf_keras.layers.Layer):
    """Mask-wise or pixel-wise post-processing of kMaX predictions (batched)."""

    def __init__(
        self,
        thing_stuff_class_ids: Sequence[int],
        num_thing_classes: int,
        ignore_label: int,
        label_divisor: int,
        output_size: Sequence[int],
        method: str = _DEFAULTS.transformer_post_processing,
        pixel_confidence_threshold: float = _DEFAULTS.pixel_confidence_threshold,
        class_threshold: float = _DEFAULTS.transformer_class_confidence_threshold,
        thing_threshold: float = (
            _MASKWISE_DEFAULTS.transformer_class_confidence_threshold_thing
        ),
        stuff_threshold: float = (
            _MASKWISE_DEFAULTS.transformer_class_confidence_threshold_stuff
        ),
        overlapping_threshold: float = _MASKWISE_DEFAULTS.overlapping_threshold,
        reorder_class_weight: float = _MASKWISE_DEFAULTS.reorder_class_weight,
        reorder_mask_weight: float = _MASKWISE_DEFAULTS.reorder_mask_weight,
        thing_area_limit: int = _DEFAULTS.thing_area_limit,
        stuff_area_limit: int = _DEFAULTS.stuff_area_limit,
        resolution: str = _DEFAULTS.post_processing_resolution,
        **kwargs,
    ):
        """Stores the post-processing settings.

        Args:
          thing_stuff_class_ids: Dataset semantic id of each class index of the
            class head (things first, then stuff; void excluded).
          num_thing_classes: Number of leading thing classes in that order.
          ignore_label: Semantic id of pixels that belong to no segment (the
            dataset's void id, DeepLab2's ``void_label``).
          label_divisor: Panoptic label divisor.
          output_size: (height, width) the mask logits are resized to, the
            padded input size.
          method: "maskwise" or "pixelwise".
          pixel_confidence_threshold: Per-pixel slot probability threshold.
          class_threshold: Pixel-wise only: class confidence threshold.
          thing_threshold: Mask-wise only: class confidence threshold, things.
          stuff_threshold: Mask-wise only: class confidence threshold, stuff.
          overlapping_threshold: Mask-wise only: minimum unoccupied fraction of
            a mask for it to be pasted.
          reorder_class_weight: Mask-wise only: ranking exponent of the class
            confidence.
          reorder_mask_weight: Mask-wise only: ranking exponent of the mask score.
          thing_area_limit: Thing segments smaller than this become void.
          stuff_area_limit: Stuff segments smaller than this become void.
          resolution: "input" (exact, DeepLab2's) or "model_output"
            (approximate and faster: decide at the logits' resolution, then
            upsample the maps by nearest neighbour). Area limits count
            pixels of the output maps in both cases.
          **kwargs: Keras layer arguments.
        """
        super().__init__(**kwargs)
        if method not in POST_PROCESSING_METHODS:
            raise ValueError(
                f"unknown transformer_post_processing {method!r}; known methods: "
                f"{', '.join(POST_PROCESSING_METHODS)}."
            )
        if resolution not in POST_PROCESSING_RESOLUTIONS:
            raise ValueError(
                f"unknown post_processing_resolution {resolution!r}; known: "
                f"{', '.join(POST_PROCESSING_RESOLUTIONS)}; fix evaluator_options."
            )
        for name, value in (
            ("pixel_confidence_threshold", pixel_confidence_threshold),
            ("transformer_class_confidence_threshold", class_threshold),
            ("transformer_class_confidence_threshold_thing", thing_threshold),
            ("transformer_class_confidence_threshold_stuff", stuff_threshold),
            ("overlapping_threshold", overlapping_threshold),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(
                    f"{name} = {value} must lie in [0, 1]; fix evaluator_options."
                )
        for name, value in (
            ("thing_area_limit", thing_area_limit),
            ("stuff_area_limit", stuff_area_limit),
        ):
            if int(value) < 0:
                raise ValueError(f"{name} = {value} must be >= 0.")
        if not 0 <= num_thing_classes <= len(thing_stuff_class_ids):
            raise ValueError(
                f"num_thing_classes = {num_thing_classes} must lie in "
                f"[0, {len(thing_stuff_class_ids)}]."
            )
        if len(output_size) != 2:
            raise ValueError(f"output_size must be (height, width), got {output_size}.")
        self.thing_stuff_class_ids = tuple(int(i) for i in thing_stuff_class_ids)
        self.num_thing_classes = int(num_thing_classes)
        self.ignore_label = int(ignore_label)
        self.label_divisor = int(label_divisor)
        self.output_size = tuple(int(s) for s in output_size)
        self.method = method
        self.pixel_confidence_threshold = float(pixel_confidence_threshold)
        self.class_threshold = float(class_threshold)
        self.thing_threshold = float(thing_threshold)
        self.stuff_threshold = float(stuff_threshold)
        self.overlapping_threshold = float(overlapping_threshold)
        self.reorder_class_weight = float(reorder_class_weight)
        self.reorder_mask_weight = float(reorder_mask_weight)
        self.thing_area_limit = int(thing_area_limit)
        self.stuff_area_limit = int(stuff_area_limit)
        self.resolution = resolution

    def _check_shapes(self, mask_logits: tf.Tensor, class_logits: tf.Tensor) -> int:
        if mask_logits.shape.rank != 4 or class_logits.shape.rank != 3:
            raise ValueError(
                f"{common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY} must be [B, h, w, NQ] and "
                f"{common.PRED_TRANSFORMER_CLASS_LOGITS_KEY} [B, NQ, NC + 1]; got "
                f"{mask_logits.shape} and {class_logits.shape}."
            )
        num_slots = mask_logits.shape[-1]
        if num_slots is None or class_logits.shape[1] not in (None, num_slots):
            raise ValueError(
                f"mask logits {mask_logits.shape} and class logits "
                f"{class_logits.shape} must agree on a static number of slots."
            )
        expected = len(self.thing_stuff_class_ids) + 1
        if class_logits.shape[-1] != expected:
            raise ValueError(
                f"{common.PRED_TRANSFORMER_CLASS_LOGITS_KEY} has "
                f"{class_logits.shape[-1]} channels; the dataset needs {expected} "
                "(thing and stuff classes plus void)."
            )
        if num_slots >= self.label_divisor:
            raise ValueError(
                f"{num_slots} mask slots cannot be encoded as instance ids below the "
                f"label divisor {self.label_divisor}; use fewer slots."
            )
        return int(num_slots)

    def call(
        self, inputs: Dict[str, tf.Tensor], training: Optional[bool] = None
    ) -> Dict[str, tf.Tensor]:
        """Post-processes a prediction dict.

        Args:
          inputs: Dict with ``pixel_space_mask_logits`` [B, h, w, NQ] and
            ``transformer_class_logits`` [B, NQ, NC + 1].
          training: Unused.

        Returns:
          Dict with the panoptic, semantic and instance maps ([B, H, W] int32)
          and the instance and semantic score maps ([B, H, W] float32).
        """
        del training
        mask_logits = tf.cast(
            inputs[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY], tf.float32
        )
        class_logits = tf.cast(
            inputs[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY], tf.float32
        )
        num_slots = self._check_shapes(mask_logits, class_logits)
        if self.resolution == INPUT_RESOLUTION:
            pixel_logits = resize_mask_logits(mask_logits, self.output_size)
        else:
            # The same tensor: maskwise_assignment then takes one softmax.
            pixel_logits = mask_logits
        if self.method == MASKWISE:
            assignment = maskwise_assignment(
                mask_logits,
                pixel_logits,
                class_logits,
                num_thing_classes=self.num_thing_classes,
                pixel_confidence_threshold=self.pixel_confidence_threshold,
                thing_threshold=self.thing_threshold,
                stuff_threshold=self.stuff_threshold,
                overlapping_threshold=self.overlapping_threshold,
                reorder_class_weight=self.reorder_class_weight,
                reorder_mask_weight=self.reorder_mask_weight,
            )
        else:
            assignment = pixelwise_assignment(
                pixel_logits,
                class_logits,
                pixel_confidence_threshold=self.pixel_confidence_threshold,
                class_threshold=self.class_threshold,
            )
        semantic = argmax_semantic(
            pixel_logits, class_logits, self.thing_stuff_class_ids
        )
        pixel_weights = None
        if self.resolution == MODEL_OUTPUT_RESOLUTION:
            # Merged on the logit grid with the areas counted in output
            # pixels, then the five maps upsampled: the same maps as
            # upsampling the assignment and merging at the output size, at
            # 1/16 of the merge's work.
            pixel_weights = nearest_pixel_weights(
                mask_logits.shape[1:3], self.output_size
            )
        panoptic = merge_to_panoptic(
            assignment,
            self.thing_stuff_class_ids,
            num_thing_classes=self.num_thing_classes,
            ignore_label=self.ignore_label,
            label_divisor=self.label_divisor,
            num_mask_slots=num_slots,
            thing_area_limit=self.thing_area_limit,
            stuff_area_limit=self.stuff_area_limit,
            pixel_weights=pixel_weights,
        )
        maps = {
            common.PRED_PANOPTIC_KEY: panoptic,
            common.PRED_SEMANTIC_KEY: semantic,
            common.PRED_INSTANCE_KEY: assignment.mask_id_plus_one,
            common.PRED_INSTANCE_SCORES_KEY: assignment.instance_score,
            common.PRED_SEMANTIC_SCORES_KEY: assignment.semantic_score,
        }
        if self.resolution == MODEL_OUTPUT_RESOLUTION:
            maps = upsample_nearest_maps(maps, self.output_size)
        return maps

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            thing_stuff_class_ids=list(self.thing_stuff_class_ids),
            num_thing_classes=self.num_thing_classes,
            ignore_label=self.ignore_label,
            label_divisor=self.label_divisor,
            output_size=list(self.output_size),
            method=self.method,
            pixel_confidence_threshold=self.pixel_confidence_threshold,
            class_threshold=self.class_threshold,
            thing_threshold=self.thing_threshold,
            stuff_threshold=self.stuff_threshold,
            overlapping_threshold=self.overlapping_threshold,
            reorder_class_weight=self.reorder_class_weight,
            reorder_mask_weight=self.reorder_mask_weight,
            thing_area_limit=self.thing_area_limit,
            stuff_area_limit=self.stuff_area_limit,
            resolution=self.resolution,
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> "PanopticPostProcessor":
        config = dict(config)
        if "void_label" in config:  # the key's name before ignore_label
            config["ignore_label"] = config.pop("void_label")
        return cls(**config)


def build_post_processor(
    evaluator_options: evaluator_pb2.EvaluatorOptions,
    descriptor: DatasetDescriptor,
    output_size: Sequence[int],
    name: str = "post_processor",
) -> PanopticPostProcessor:
    """Builds the post-processor from DeepLab2 ``EvaluatorOptions``.

    When ``transformer_post_processing`` is "maskwise" and the
    ``maskwise_postprocessing`` message is absent, its proto defaults apply.

    Args:
      evaluator_options: The config's ``evaluator_options``.
      descriptor: The evaluated dataset.
      output_size: (height, width) of the padded model input, normally the
        eval crop size.
      name: Layer name.
    """
    maskwise = evaluator_options.maskwise_postprocessing
    return PanopticPostProcessor(
        thing_stuff_class_ids=descriptor.thing_stuff_class_ids,
        num_thing_classes=len(descriptor.thing_class_ids),
        ignore_label=descriptor.ignore_label,
        label_divisor=descriptor.panoptic_label_divisor,
        output_size=output_size,
        method=evaluator_options.transformer_post_processing,
        pixel_confidence_threshold=evaluator_options.pixel_confidence_threshold,
        class_threshold=evaluator_options.transformer_class_confidence_threshold,
        thing_threshold=maskwise.transformer_class_confidence_threshold_thing,
        stuff_threshold=maskwise.transformer_class_confidence_threshold_stuff,
        overlapping_threshold=maskwise.overlapping_threshold,
        reorder_class_weight=maskwise.reorder_class_weight,
        reorder_mask_weight=maskwise.reorder_mask_weight,
        thing_area_limit=evaluator_options.thing_area_limit,
        stuff_area_limit=evaluator_options.stuff_area_limit,
        resolution=evaluator_options.post_processing_resolution,
        name=name,
    )
