"""Pixel sampling by inverse mask area (kMaX / CMT-DeepLab).

DeepLab2 (model/loss/max_deeplab_loss.py) samples K pixels without replacement
from a softmax over ``temperature * log(output_area / mask_area)``, which
favours pixels of small masks when the temperature is > 0, and never picks void
pixels while enough non-void pixels exist. The sample is drawn with the
Gumbel-top-k trick.
"""

from __future__ import annotations

import tensorflow as tf

# DeepLab2 max_deeplab_loss.py _SOFTMAX_MASKING_CONSTANT: logit offset that
# removes void pixels from the sampling distribution.
SOFTMAX_MASKING_CONSTANT = -99999.0
# Smallest uniform draw, so that -log(-log(u)) stays finite.
_MIN_UNIFORM = 1e-20


def area_sampling_logits(
    inverse_pixel_mask_area: tf.Tensor, pixel_non_void: tf.Tensor, temperature: float
) -> tf.Tensor:
    """[B, P] logits of the pixel sampling distribution."""
    return (
        tf.math.log(inverse_pixel_mask_area) * temperature
        + (1.0 - pixel_non_void) * SOFTMAX_MASKING_CONSTANT
    )


def gumbel_top_k_indices(logits: tf.Tensor, k: int) -> tf.Tensor:
    """[B, P] -> [B, min(k, P)] int32 indices sampled without replacement.

    DeepLab2 fails when k exceeds the number of pixels (tiny crops); here k is
    capped at P, which then samples every pixel.
    """
    num_pixels = logits.shape[-1]
    if num_pixels is None:
        raise ValueError(
            f"pixel sampling needs a static pixel count, got {logits.shape}."
        )
    k = min(int(k), num_pixels)
    uniform = tf.random.uniform(tf.shape(logits), _MIN_UNIFORM, 1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    return tf.math.top_k(logits + gumbel, k, sorted=False).indices
