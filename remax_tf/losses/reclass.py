"""ReClass: relaxation on classes (ReMaX paper Sec. 3.2, Eq. 3-4).

A predicted mask that overlaps several ground-truth classes should not be
penalised for predicting them. The one-hot class target y of each slot is
softened with the slot's overlap with every class's ground-truth semantic
mask:

  y_m   = sigma(m_pan)^T S / sum_i s_i       (Eq. 3; per class c, divided by
                                              that class's pixel count)
  y_hat = eta * y_m + (1 - eta * y_m) * y    (Eq. 4; elementwise)

So a matched slot's class keeps target 1 and every other class c gets
eta * y_m[c] in [0, eta]. eta = 0 gives y_hat = y exactly (plain kMaX).

Which slots: every slot, as the paper's "each predicted mask" and the only
public ReMaX code (xushilin1/remax_deeplab @ b9cf318,
projects/ReMaX/kmax_deeplab_head.py:281-286, Eq. 4 on the one-hot labels of
all queries) do. An unmatched slot's y is the void one-hot: its real classes
get eta * y_m[c] here and the class term adds its void target 1 (S has no
void column, as in the paper, so the void target stays exactly 1).
``soften_unmatched=False`` keeps unmatched slots at the pure void target.
"""

from __future__ import annotations

import tensorflow as tf


def reclass_targets(
    mask_logits: tf.Tensor,
    semantic_masks: tf.Tensor,
    class_targets: tf.Tensor,
    eta: float,
    soften_unmatched: bool = True,
) -> tf.Tensor:
    """Soft class targets of Eq. (3)-(4), without gradient.

    Args:
      mask_logits: [B, H, W, NQ] or [B, P, NQ] panoptic mask logits m_pan
        (un-relaxed).
      semantic_masks: [B, H, W, NC] or [B, P, NC] binary ground-truth semantic
        masks S (void pixels all zero).
      class_targets: [B, NQ, NC] one-hot targets y (zero rows for unmatched
        slots, whose void target the class term adds).
      eta: The smoothing factor (paper Table 4: 0.1).
      soften_unmatched: Give unmatched slots eta * y_m too (paper, public
        code); False keeps their rows zero.

    Returns:
      [B, NQ, NC] soft targets y_hat over the real classes. They need not sum
      to one; a class absent from the crop (zero area) contributes 0.
    """
    if eta < 0.0:
        raise ValueError(
            f"ReClass eta must be >= 0, got {eta} (model_options.remax.eta)."
        )
    class_targets = tf.cast(class_targets, tf.float32)
    if eta == 0.0:
        return tf.stop_gradient(class_targets)
    batch = tf.shape(mask_logits)[0]
    mask_probs = tf.reshape(
        tf.sigmoid(tf.cast(mask_logits, tf.float32)),
        [batch, -1, mask_logits.shape[-1]],
    )
    masks = tf.reshape(
        tf.cast(semantic_masks, tf.float32), [batch, -1, semantic_masks.shape[-1]]
    )
    # Eq. (3) of ReMaX: y_m = sigma(m_pan)^T S / sum_i s_i. An absent class has
    # a zero numerator; flooring its area at 1 makes it 0 (a NaN in m_pan
    # still propagates).
    overlap = tf.einsum("bpq,bpc->bqc", mask_probs, masks)
    area = tf.maximum(tf.reduce_sum(masks, axis=1), 1.0)[:, None, :]
    y_m = overlap / area
    # Eq. (4) of ReMaX: y_hat = eta * y_m + (1 - eta * y_m) * y.
    y_hat = eta * y_m + (1.0 - eta * y_m) * class_targets
    if not soften_unmatched:
        y_hat *= tf.reduce_max(class_targets, axis=-1, keepdims=True)
    return tf.stop_gradient(y_hat)
