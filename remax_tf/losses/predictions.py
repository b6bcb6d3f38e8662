"""Validation of the model's prediction dict before the losses read it.

The loss contract (remax_tf/common.py): the final prediction and one dict per
transformer-decoder layer in ``PRED_AUXILIARY_OUTPUTS``, all at the same
mask-logit resolution [h, w] (DeepLab2's kmax_deeplab.py resizes the auxiliary
outputs), class logits in things-then-stuff order with void last, and the
ReMaX semantic logits m_sem [B, h, w, NC] and the ReMask-relaxed mask logits
[B, h, w, NQ] on the relaxed layers (the model's ReMask layer makes them);
``PRED_PIXEL_SPACE_MASK_LOGITS_KEY`` holds the un-relaxed m_pan everywhere.
Tensors are cast to float32 (mixed-precision models).
"""

from __future__ import annotations

from typing import Dict
from typing import List
from typing import Mapping

import tensorflow as tf

from remax_tf import common
from remax_tf.losses.targets import ClassLayout


def _check_shapes(
    where: str, output: Mapping[str, tf.Tensor], mask_shape, layout: ClassLayout
) -> None:
    num_classes = layout.num_thing_stuff_classes
    expected = {
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: list(mask_shape[1:]),
        common.PRED_RELAXED_MASK_LOGITS_KEY: list(mask_shape[1:]),
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: [mask_shape[3], num_classes + 1],
        common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY: list(mask_shape[1:3]) + [None],
        common.PRED_REMAX_SEMANTIC_LOGITS_KEY: list(mask_shape[1:3]) + [num_classes],
        common.PRED_SEMANTIC_LOGITS_KEY: [None, None, layout.num_classes],
    }
    for name, tensor in output.items():
        shape = tensor.shape.as_list()[1:]
        want = expected[name]
        if len(shape) != len(want) or any(
            w is not None and d != w for d, w in zip(shape, want)
        ):
            raise ValueError(
                f"{where}: {name!r} has shape [B, {', '.join(map(str, shape))}], "
                f"expected [B, {', '.join('*' if w is None else str(w) for w in want)}]"
                " (mask logits [B, h, w, NQ]; classes in things-then-stuff order "
                "with void last)."
            )


def collect_outputs(
    y_pred: Mapping[str, tf.Tensor],
    layout: ClassLayout,
    num_auxiliary_outputs: int,
    num_relaxed_stages: int,
    needs_semantic_logits: bool,
    needs_relaxed_mask_logits: bool,
    needs_remax_semantic_logits: bool,
    needs_pixel_feature: bool,
) -> List[Dict[str, tf.Tensor]]:
    """[final, aux_0, aux_1, ...] with the keys the losses need, as float32.

    Raises a KeyError naming the output and key that is missing, a ValueError
    for a wrong number of auxiliary outputs or a wrong shape.
    """
    auxiliary = tuple(y_pred.get(common.PRED_AUXILIARY_OUTPUTS, ()))
    if len(auxiliary) != num_auxiliary_outputs:
        raise ValueError(
            f"the loss expects {num_auxiliary_outputs} auxiliary outputs "
            f"(one per transformer-decoder layer) in y_pred["
            f"{common.PRED_AUXILIARY_OUTPUTS!r}], got {len(auxiliary)}. Call the "
            "model with training=True, or build the loss for this model."
        )
    mask_shape = y_pred[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape
    if mask_shape.rank != 4 or None in mask_shape[1:]:
        raise ValueError(
            f"{common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY!r} must be [B, h, w, NQ] "
            f"with static h, w, NQ; got {mask_shape}."
        )
    collected = []
    for index, output in enumerate((y_pred,) + auxiliary):
        where = "final output" if index == 0 else f"auxiliary output {index - 1}"
        keys = [
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
        ]
        if needs_pixel_feature:
            keys.append(common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY)
        if 0 < index <= num_relaxed_stages:
            if needs_relaxed_mask_logits:
                keys.append(common.PRED_RELAXED_MASK_LOGITS_KEY)
            if needs_remax_semantic_logits:
                keys.append(common.PRED_REMAX_SEMANTIC_LOGITS_KEY)
        if index == 0 and needs_semantic_logits:
            keys.append(common.PRED_SEMANTIC_LOGITS_KEY)
        converted = {}
        for name in keys:
            if name not in output:
                raise KeyError(
                    f"{where} lacks {name!r} (has {sorted(output)}); the configured "
                    "losses need it."
                )
            converted[name] = tf.cast(output[name], tf.float32)
        _check_shapes(where, converted, mask_shape, layout)
        collected.append(converted)
    return collected
