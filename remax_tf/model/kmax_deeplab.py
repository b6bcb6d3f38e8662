"""The kMaX-DeepLab meta-architecture with ReMaX's training-only heads.

Composition only (DeepLab2 ``model/kmax_deeplab.py``): normalise the images,
then pixel encoder -> pixel decoder -> kMaX transformer decoder -> prediction
head. The parts are built by :func:`remax_tf.model.builder.build_model`.

Training (``training=True``) returns, with the keys of ``remax_tf.common``:

* ``PRED_PIXEL_SPACE_MASK_LOGITS_KEY`` [B, h, w, NQ] at the pixel decoder's
  last stride, ``PRED_TRANSFORMER_CLASS_LOGITS_KEY`` [B, NQ, NC + 1] (void
  last), ``PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY`` [B, h, w, E];
* ``PRED_SEMANTIC_LOGITS_KEY`` from kMaX's auxiliary semantic head when it is
  built: [B, h, w, num_classes] with its decoder, else at the stride-32
  resolution (DeepLab2's Cityscapes setting);
* ``PRED_AUXILIARY_OUTPUTS``: one dict per kMaX layer with its auxiliary mask
  logits and pixel feature resized to [h, w] (aligned corners, as DeepLab2's
  ``_prepare_auxiliary_results``), its class logits, and
  ``PRED_KEY_FEATURE_KEY`` (x_sem, at the layer's stride). The first
  ``len(remax_semantic_heads)`` dicts also hold ``PRED_REMAX_SEMANTIC_LOGITS_KEY``
  [B, h, w, NC] (that layer's ReMaX semantic head on its x_sem, resized) and
  ``PRED_RELAXED_MASK_LOGITS_KEY`` [B, h, w, NQ]: the layer's mask logits
  relaxed by the ``ReMask`` layer (Eq. 1-2), which the losses consume.

Inference returns only the three final predictions. The training-only layers
(auxiliary semantic head, ReMaX semantic heads) are never called, hence never
built, at inference, so an inference-only model has exactly DeepLab2's
inference variables, with or without ReMaX. With ``keep_remax_at_inference``
(paper Table 5 ablation) the ReMaX heads run at inference too and the
auxiliary outputs of the relaxed layers are returned (ReMask is the identity
at inference, paper Table 5); the final prediction is never relaxed.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.model.layers.resized_fuse import resize_bilinear_align_corners
from remax_tf.model.remask import ReMask
from remax_tf.model.transformer_decoder import kmax_decoder

# Auxiliary-prediction entries resized to the final output size.
_RESIZED_AUXILIARY_KEYS = (
    common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
    common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY,
)


class KMaXDeepLab(tf_keras.Model):
    """kMaX-DeepLab; see the module docstring for inputs and outputs.

    Args:
      pixel_encoder: Maps images in [-1, 1] to the endpoint dict.
      pixel_decoder: :class:`KMaXPixelDecoder`.
      transformer_decoder: :class:`KMaXTransformerDecoder`.
      predictor: The final :class:`KMaXPredictionHead`.
      auxiliary_semantic_head: kMaX's :class:`AuxiliarySemanticHead`, or None.
      remax_semantic_heads: One :class:`ReMaXSemanticHead` per relaxed layer
        (the first ones), or empty for plain kMaX.
      remask: The :class:`ReMask` layer relaxing those layers' mask logits;
        required with semantic heads.
      keep_remax_at_inference: Run the ReMaX heads at inference (ablation).
    """

    def __init__(
        self,
        *,
        pixel_encoder: tf_keras.Model,
        pixel_decoder: tf_keras.layers.Layer,
        transformer_decoder: tf_keras.layers.Layer,
        predictor: tf_keras.layers.Layer,
        auxiliary_semantic_head: Optional[tf_keras.layers.Layer] = None,
        remax_semantic_heads: Sequence[tf_keras.layers.Layer] = (),
        remask: Optional[ReMask] = None,
        keep_remax_at_inference: bool = False,
        name: str = "kmax_deeplab",
    ) -> None:
        super().__init__(name=name)
        strides = list(transformer_decoder.strides)
        unknown = [s for s in strides if s not in pixel_decoder.output_strides]
        if unknown:
            raise ValueError(
                f"transformer decoder strides {unknown} are not pixel-decoder "
                f"strides {pixel_decoder.output_strides}."
            )
        if len(remax_semantic_heads) > transformer_decoder.num_layers:
            raise ValueError(
                f"{len(remax_semantic_heads)} ReMaX semantic heads for "
                f"{transformer_decoder.num_layers} kMaX layers."
            )
        if remax_semantic_heads and remask is None:
            raise ValueError("ReMaX semantic heads need the ReMask layer (remask=).")
        self._pixel_encoder = pixel_encoder
        self._pixel_decoder = pixel_decoder
        self._transformer_decoder = transformer_decoder
        self._predictor = predictor
        self._auxiliary_semantic_head = auxiliary_semantic_head
        self._remax_semantic_heads = list(remax_semantic_heads)
        self._remask = remask
        self._keep_remax_at_inference = bool(keep_remax_at_inference)
        self._decoder_indices = [pixel_decoder.output_strides.index(s) for s in strides]

    # ------------------------------------------------------------------
    # Structure.
    @property
    def num_auxiliary_outputs(self) -> int:
        """Number of per-layer auxiliary predictions (sum of kMaX blocks)."""
        return self._transformer_decoder.num_layers

    @property
    def num_relaxed_layers(self) -> int:
        """Number of leading kMaX layers with a ReMaX semantic head."""
        return len(self._remax_semantic_heads)

    @property
    def pixel_encoder(self) -> tf_keras.Model:
        return self._pixel_encoder

    @property
    def checkpoint_items(self) -> Dict[str, Any]:
        """DeepLab2's checkpoint item names (plus the ReMaX heads)."""
        items = {
            common.CKPT_ENCODER: self._pixel_encoder,
            common.CKPT_PIXEL_DECODER: self._pixel_decoder,
            common.CKPT_TRANSFORMER_DECODER: self._transformer_decoder,
        }
        items.update(self._predictor.checkpoint_items)
        if self._auxiliary_semantic_head is not None:
            items.update(self._auxiliary_semantic_head.checkpoint_items)
        for index, head in enumerate(self._remax_semantic_heads):
            items[f"{common.CKPT_REMAX_SEMANTIC_HEAD_PREFIX}{index}"] = head
        return items

    @property
    def training_only_layers(self) -> List[tf_keras.layers.Layer]:
        """Layers dropped from the inference model."""
        layers = []
        if self._auxiliary_semantic_head is not None:
            layers.append(self._auxiliary_semantic_head)
        if not self._keep_remax_at_inference:
            layers.extend(self._remax_semantic_heads)
        return layers

    @property
    def training_only_variables(self) -> List[tf.Variable]:
        """Variables of the training-only layers built so far."""
        return [v for layer in self.training_only_layers for v in layer.variables]

    @property
    def inference_variables(self) -> List[tf.Variable]:
        """Every variable except the training-only ones."""
        excluded = {id(v) for v in self.training_only_variables}
        return [v for v in self.variables if id(v) not in excluded]

    # ------------------------------------------------------------------
    # Forward pass.
    def call(self, images: tf.Tensor, training=None) -> Dict[str, Any]:
        training = bool(training)
        # Inception-style normalisation outside the encoder (DeepLab2).
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        endpoints = self._pixel_encoder(x, training=training)
        decoded = self._pixel_decoder(endpoints, training=training)
        transformer = self._transformer_decoder(
            [decoded[i] for i in self._decoder_indices], training=training
        )
        outputs = self._predictor(
            (
                decoded[-1],
                transformer[kmax_decoder.CLASS_EMBEDDINGS],
                transformer[kmax_decoder.MASK_EMBEDDINGS],
            ),
            training=training,
        )
        if not (training or self._keep_remax_at_inference):
            return outputs
        size = outputs[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape[1:3]
        auxiliary = self._auxiliary_outputs(
            transformer[kmax_decoder.AUXILIARY_PREDICTIONS], size, training
        )
        if not training:
            outputs[common.PRED_AUXILIARY_OUTPUTS] = auxiliary[
                : self.num_relaxed_layers
            ]
            return outputs
        outputs[common.PRED_AUXILIARY_OUTPUTS] = auxiliary
        if self._auxiliary_semantic_head is not None:
            outputs[common.PRED_SEMANTIC_LOGITS_KEY] = self._auxiliary_semantic_head(
                endpoints, training=training
            )
        return outputs

    def _auxiliary_outputs(self, predictions, size, training) -> tuple:
        results = []
        for index, prediction in enumerate(predictions):
            result = dict(prediction)
            for key in _RESIZED_AUXILIARY_KEYS:
                result[key] = resize_bilinear_align_corners(result[key], size)
            if index < len(self._remax_semantic_heads):
                # ReMaX Sec. 4.1: the semantic head reads the k-means key x_sem.
                semantic = self._remax_semantic_heads[index](
                    result[common.PRED_KEY_FEATURE_KEY], training=training
                )
                semantic = resize_bilinear_align_corners(semantic, size)
                result[common.PRED_REMAX_SEMANTIC_LOGITS_KEY] = semantic
                # ReMaX Eq. (1)-(2); the identity at inference.
                result[common.PRED_RELAXED_MASK_LOGITS_KEY] = self._remask(
                    [
                        result[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY],
                        semantic,
                        result[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY],
                    ],
                    training=training,
                )
            results.append(result)
        return tuple(results)
