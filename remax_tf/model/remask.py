"""ReMask: relaxation on masks (ReMaX paper Sec. 3.1, Eq. 1-2). Training only.

The model (``remax_tf.model.kmax_deeplab``) applies the :class:`ReMask` layer
to the mask logits of each relaxed kMaX layer in its training forward pass
and returns them beside the raw ones; the losses consume those relaxed logits.
At inference the layer is the identity, so the exported graph is kMaX's.

A stage's panoptic mask logits m_pan are calibrated by its semantic
prediction m_sem mapped into slot space through the slots' class scores:

  m_sem_hat = act(sg(m_sem)) act(sg(p))^T             (Eq. 1) -> [.., NQ]
  m_pan_hat = m_pan + m_sem_hat * m_pan                (Eq. 2)

The identity term keeps m_pan's magnitude, so at inference the semantic
branch is dropped and m_pan is used as is (paper Table 5): the layer returns
``mask_logits`` untouched when not training.

``act`` is ``sigmoid`` (paper default, Table 2) or ``softmax``. Both act on
the NC real classes only: the void logit of p (last channel) is dropped
first, then
  sigmoid: elementwise on m_sem [.., NC] and on p [NQ, NC];
  softmax: over the NC classes, per pixel for m_sem and per slot for p.
Stop-gradients: act(m_sem) (paper Sec. 3.1: "we halt the gradient flow to
m_sem") and, by default, act(p) as well: the only public ReMaX code
(xushilin1/remax_deeplab, projects/ReMaX/kmax_deeplab_head.py:255-256)
detaches both factors of Eq. (1), so the panoptic losses train only m_pan
through Eq. (2). Without the second stop-gradient (``class_stop_gradient=
False``, the paper's text read literally) the mask losses also move p through
Eq. (1), including the shift common to all class logits, which the softmax
class loss never sees: a free knob that scales m_sem_hat.

Scale: with sigmoid, m_sem_hat[q] = sum_c sigmoid(m_sem_c) sigmoid(p_qc) sums
NC products and lies in [0, NC] (about NC / 4 at initialisation). Neither the
paper nor the public code normalises it; nor does this module.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.config.resolved import ReMaXSettings
from remax_tf.config.resolved import check_remax_activation

# What the second input of ReMask holds: the semantic logits m_sem of a ReMaX
# semantic head, or semantic probabilities used as act(m_sem) directly (the
# ground-truth semantic masks of the paper's Table 7 ablation).
SEMANTIC_INPUTS = ("logits", "probabilities")


def _activate(logits: tf.Tensor, activation: str) -> tf.Tensor:
    if activation == "sigmoid":
        return tf.sigmoid(logits)
    return tf.nn.softmax(logits, axis=-1)


def remask_class_probabilities(
    class_logits: tf.Tensor, activation: str, stop_gradient: bool = True
) -> tf.Tensor:
    """[B, NQ, NC + 1] class logits (void last) -> [B, NQ, NC] act(p).

    Behind a stop-gradient by default (public ReMaX code, see module doc).
    """
    if stop_gradient:
        class_logits = tf.stop_gradient(class_logits)
    return _activate(class_logits[..., :-1], activation)


def remask_semantic_probabilities(
    semantic_logits: tf.Tensor, activation: str, stop_gradient: bool = True
) -> tf.Tensor:
    """[B, ..., NC] m_sem -> act(m_sem), behind a stop-gradient by default."""
    if stop_gradient:
        semantic_logits = tf.stop_gradient(semantic_logits)
    return _activate(semantic_logits, activation)


def relax_mask_logits(
    mask_logits: tf.Tensor, semantic_probs: tf.Tensor, class_probs: tf.Tensor
) -> tf.Tensor:
    """Eq. (1)-(2) from probabilities.

    Args:
      mask_logits: [B, ..., NQ] m_pan (spatial axes [H, W] or [P]).
      semantic_probs: [B, ..., NC] act(m_sem), or ground-truth semantic masks
        for the paper's Table 7 ablation.
      class_probs: [B, NQ, NC] act(p).
    """
    # Eq. (1) of ReMaX: m_sem_hat = sigma(m_sem) sigma(p)^T, one batched matmul
    # over flattened pixels. (tf.einsum with an ellipsis broadcast this to
    # [B, P, NQ, NC] first: 1.8 GB and ~15 s per layer at 641 with 133 classes.)
    batch, classes = tf.shape(semantic_probs)[0], semantic_probs.shape[-1]
    flat = tf.reshape(semantic_probs, [batch, -1, classes])
    semantic_in_slots = tf.reshape(
        tf.matmul(flat, class_probs, transpose_b=True), tf.shape(mask_logits)
    )
    # Eq. (2) of ReMaX: m_pan_hat = m_pan + m_sem_hat (.) m_pan.
    return mask_logits + semantic_in_slots * mask_logits


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class ReMask(tf_keras.layers.Layer):
    """Relaxes mask logits with a semantic prediction during training.

    Call with ``[mask_logits, semantic, class_logits]``:
    mask_logits [B, H, W, NQ] (or [B, P, NQ]), semantic [B, H, W, NC] (or
    [B, P, NC]): m_sem logits, or probabilities with
    ``semantic_input="probabilities"``; class_logits [B, NQ, NC + 1] (void
    last, not used). Returns relaxed logits when ``training`` is true, else
    ``mask_logits``. No weights; computes in float32 under mixed precision.
    ``stop_gradient`` stops the gradient into m_sem, ``class_stop_gradient``
    the one into p (both default on).
    """

    def __init__(
        self,
        activation: str = "sigmoid",
        stop_gradient: bool = True,
        class_stop_gradient: bool = True,
        semantic_input: str = "logits",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check_remax_activation(activation, "ReMask")
        if semantic_input not in SEMANTIC_INPUTS:
            raise ValueError(
                f"ReMask semantic_input {semantic_input!r} is unknown; known: "
                f"{', '.join(SEMANTIC_INPUTS)}."
            )
        self.activation = activation
        self.stop_gradient = bool(stop_gradient)
        self.class_stop_gradient = bool(class_stop_gradient)
        self.semantic_input = semantic_input

    @classmethod
    def from_settings(cls, remax: ReMaXSettings, **kwargs) -> "ReMask":
        """The layer a ReMaX configuration asks for; with
        ``use_ground_truth_semantic`` it takes probabilities (Table 7)."""
        semantic_input = (
            "probabilities" if remax.use_ground_truth_semantic else "logits"
        )
        return cls(
            activation=remax.activation,
            stop_gradient=remax.stop_gradient,
            class_stop_gradient=remax.class_stop_gradient,
            semantic_input=semantic_input,
            **kwargs,
        )

    def _relax(self, mask_logits, semantic, class_logits):
        num_classes = semantic.shape[-1]
        if class_logits.shape[-1] is not None and num_classes is not None:
            if class_logits.shape[-1] != num_classes + 1:
                raise ValueError(
                    f"ReMask: class_logits have {class_logits.shape[-1]} channels "
                    f"but the semantic input has {num_classes}; expected NC + 1 = "
                    f"{num_classes + 1} (NC real classes and void last)."
                )
        if self.semantic_input == "logits":
            semantic = remask_semantic_probabilities(
                semantic, self.activation, self.stop_gradient
            )
        return relax_mask_logits(
            mask_logits,
            semantic,
            remask_class_probabilities(
                class_logits, self.activation, self.class_stop_gradient
            ),
        )

    def call(self, inputs: Sequence[tf.Tensor], training=None) -> tf.Tensor:
        mask_logits, semantic, class_logits = inputs
        if training is None or isinstance(training, bool):
            if not training:
                return mask_logits
            return self._relax(mask_logits, semantic, class_logits)
        return tf.cond(
            tf.cast(training, tf.bool),
            lambda: self._relax(mask_logits, semantic, class_logits),
            lambda: tf.identity(mask_logits),
        )

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "activation": self.activation,
                "stop_gradient": self.stop_gradient,
                "class_stop_gradient": self.class_stop_gradient,
                "semantic_input": self.semantic_input,
            }
        )
        return config
