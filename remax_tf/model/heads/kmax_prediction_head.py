"""kMaX-DeepLab's prediction head: pixel embeddings, mask and class logits.

DeepLab2 ``model/decoder/max_deeplab.py`` (``MaXDeepLab`` without its
auxiliary semantic branch). The same head serves as the final predictor and,
with its own weights, as the auxiliary predictor inside every kMaX layer.

* pixel embedding: :class:`ConvHead` (5x5 conv block, 1x1 to D) -> BN -> L2
  normalisation;
* mask embedding: 1x1 conv (no bias, He init) + BN on the cluster centres;
* mask logits: einsum(pixel, mask) then a BN on an extra unit axis (one
  gamma/beta shared by all slots, gamma initialised to 0.1 = a low starting
  temperature);
* class logits: 1x1 conv with bias (std 0.01) plus a constant that gives the
  void class (last channel) a 0.9 prior probability at initialisation (Focal
  Loss, Lin et al. 2017, Sec. 3.3).
"""

from __future__ import annotations

import math
from typing import Any
from typing import Dict
from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.model.heads.conv_head import ConvHead
from remax_tf.model.layers.activations import check_activation
from remax_tf.model.layers.batch_norm import BNConfig
from remax_tf.model.layers.batch_norm import batch_norm
from remax_tf.model.layers.conv_bn_act import Conv1DBNAct
from remax_tf.model.layers.conv_bn_act import truncated_normal

# DeepLab2 max_deeplab.py constants.
VOID_PRIOR_PROB = 0.9
MASK_LOGITS_BN_GAMMA_INIT = 0.1
CLASS_HEAD_STDDEV = 0.01


def void_prior_bias(num_classes_with_void: int, void_prior: float) -> np.ndarray:
    """Logit offsets making softmax(void) = ``void_prior`` when logits are 0."""
    if not 0.0 < void_prior < 1.0:
        raise ValueError(f"void_prior must lie in (0, 1), got {void_prior}.")
    bias = np.zeros([num_classes_with_void], np.float32)
    bias[-1] = math.log((num_classes_with_void - 1) * void_prior / (1 - void_prior))
    return bias


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class KMaXPredictionHead(tf_keras.layers.Layer):
    """Maps (pixel feature, class feature, mask feature) to predictions.

    Call inputs: a tuple ``(pixel_feature [B, h, w, C], class_feature
    [B, NQ, D], mask_feature [B, NQ, D])``. Returns a dict with
    ``PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY`` [B, h, w, E],
    ``PRED_PIXEL_SPACE_MASK_LOGITS_KEY`` [B, h, w, NQ] and
    ``PRED_TRANSFORMER_CLASS_LOGITS_KEY`` [B, NQ, num_classes_with_void].
    """

    def __init__(
        self,
        num_classes_with_void: int,
        *,
        pixel_head_channels: int = 256,
        embedding_channels: int = 128,
        head_conv_type: str = "depthwise_separable_conv",
        void_prior: float = VOID_PRIOR_PROB,
        activation: str = "gelu",
        bn_config: BNConfig = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes_with_void < 2:
            raise ValueError(
                f"{self.name}: num_classes_with_void must count at least one class "
                f"and void, got {num_classes_with_void}."
            )
        self.num_classes_with_void = int(num_classes_with_void)
        self.pixel_head_channels = int(pixel_head_channels)
        self.embedding_channels = int(embedding_channels)
        self.head_conv_type = head_conv_type
        self.void_prior = float(void_prior)
        self.activation = check_activation(activation)
        self.bn_config = dict(bn_config) if bn_config else None
        self._void_bias = void_prior_bias(self.num_classes_with_void, self.void_prior)
        self._pixel_space_head = ConvHead(
            self.pixel_head_channels,
            self.embedding_channels,
            conv_type=head_conv_type,
            activation=activation,
            bn_config=bn_config,
            name="pixel_space_head",
        )
        self._transformer_mask_head = Conv1DBNAct(
            self.embedding_channels, bn_config=bn_config, name="transformer_mask_head"
        )
        self._transformer_class_head = Conv1DBNAct(
            self.num_classes_with_void,
            use_bias=True,
            use_bn=False,
            kernel_initializer=truncated_normal(CLASS_HEAD_STDDEV),
            name="transformer_class_head",
        )
        self._pixel_space_feature_batch_norm = batch_norm(
            bn_config, name="pixel_space_feature_batch_norm"
        )
        self._pixel_space_mask_batch_norm = batch_norm(
            bn_config,
            name="pixel_space_mask_batch_norm",
            gamma_initializer=tf_keras.initializers.Constant(MASK_LOGITS_BN_GAMMA_INIT),
        )

    @property
    def checkpoint_items(self) -> Dict[str, tf_keras.layers.Layer]:
        """DeepLab2's checkpoint names of the sub-layers."""
        return {
            common.CKPT_PIXEL_SPACE_HEAD: self._pixel_space_head,
            common.CKPT_TRANSFORMER_MASK_HEAD: self._transformer_mask_head,
            common.CKPT_TRANSFORMER_CLASS_HEAD: self._transformer_class_head,
            common.CKPT_PIXEL_SPACE_FEATURE_BATCH_NORM: (
                self._pixel_space_feature_batch_norm
            ),
            common.CKPT_PIXEL_SPACE_MASK_BATCH_NORM: self._pixel_space_mask_batch_norm,
        }

    def call(self, inputs: Sequence[tf.Tensor], training=None) -> Dict[str, tf.Tensor]:
        pixel_feature, class_feature, mask_feature = inputs
        pixel = self._pixel_space_head(pixel_feature, training=training)
        pixel = self._pixel_space_feature_batch_norm(pixel, training=training)
        pixel = tf.math.l2_normalize(pixel, axis=-1)

        class_logits = self._transformer_class_head(class_feature, training=training)
        class_logits = class_logits + tf.constant(self._void_bias)

        mask_kernel = self._transformer_mask_head(mask_feature, training=training)
        mask_logits = tf.einsum("bhwd,bid->bhwi", pixel, mask_kernel)
        # One BN channel shared by every slot (no per-slot bias).
        mask_logits = self._pixel_space_mask_batch_norm(
            mask_logits[..., tf.newaxis], training=training
        )[..., 0]
        return {
            common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY: pixel,
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: mask_logits,
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: class_logits,
        }

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_classes_with_void=self.num_classes_with_void,
            pixel_head_channels=self.pixel_head_channels,
            embedding_channels=self.embedding_channels,
            head_conv_type=self.head_conv_type,
            void_prior=self.void_prior,
            activation=self.activation,
            bn_config=self.bn_config,
        )
        return config
