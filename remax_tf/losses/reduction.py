"""Per-sample reductions shared by the kMaX loss terms.

DeepLab2 (model/loss/base_loss.py) averages a per-element loss over the
elements whose weighted loss is non-zero, after optionally keeping only the
top-k percent hardest elements. Every kMaX term uses this normalisation, so it
is mirrored exactly: elements with weight 0 (void pixels, unmatched slots with
no void overlap) do not count in the denominator.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def mean_over_nonzero(loss: tf.Tensor) -> tf.Tensor:
    """[B, ...] -> [B]: sum / number of non-zero entries (0 when there are none).

    A NaN entry is non-zero, so it propagates to the result.
    """
    flat = tf.reshape(loss, [tf.shape(loss)[0], -1])
    count = tf.reduce_sum(tf.cast(tf.not_equal(flat, 0.0), flat.dtype), axis=1)
    total = tf.reduce_sum(flat, axis=1)
    # 0 / 0 only when every entry is exactly zero: the sample has nothing to
    # learn from this term (e.g. an all-void crop), and its loss is 0.
    return tf.where(count > 0, total / tf.maximum(count, 1.0), tf.zeros_like(total))


def check_top_k_percent(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{name}.top_k_percent must lie in [0, 1], got {value}. Fix the "
            "trainer_options.loss_options entry."
        )
    return float(value)


def average_top_k(loss: tf.Tensor, top_k_percent: float) -> tf.Tensor:
    """[B, ...] -> [B]: mean over non-zero entries of the top-k percent largest.

    DeepLab2's ``compute_average_top_k_loss``; k = round(top_k_percent * n)
    with round-half-to-even like ``tf.math.round``.
    """
    flat = tf.reshape(loss, [tf.shape(loss)[0], -1])
    if top_k_percent < 1.0:
        num_elements = flat.shape[1]
        if num_elements is None:
            raise ValueError(
                f"top-k loss reduction needs a static number of elements, got "
                f"shape {loss.shape}."
            )
        k = int(np.round(top_k_percent * num_elements))
        flat = tf.math.top_k(flat, k, sorted=False).values
    return mean_over_nonzero(flat)
