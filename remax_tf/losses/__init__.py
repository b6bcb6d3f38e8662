"""The kMaX-DeepLab training objective and ReMaX's relaxations.

    from remax_tf.losses import build_loss
    loss = build_loss(config, descriptor)
    loss_dict = loss(y_true, y_pred)   # scalars; loss_dict[common.TOTAL_LOSS]

One module per concept: ``targets`` (ground truth at the output
resolution), ``hungarian`` (the assignment solver), ``matching`` (kMaX
matching), ``pq_style``, ``mask_id``, ``instance_discrimination``,
``semantic``, ``reclass`` (ReMaX Eq. 3-4), ``reduction`` and ``sampling``
(DeepLab2's normalisation and pixel sampling), ``predictions`` (prediction
dict validation), ``kmax_loss`` (the objective), ``builder`` (config ->
settings). ReMask (Eq. 1-2) is the training-only layer ``remax_tf.model.remask.ReMask``
of the model; the losses consume the relaxed logits it returns.
"""

from remax_tf.losses.builder import build_loss
from remax_tf.losses.builder import loss_settings_from_config
from remax_tf.losses.hungarian import linear_sum_assignment
from remax_tf.losses.kmax_loss import KMaXLoss
from remax_tf.losses.kmax_loss import KMaXLossSettings
from remax_tf.losses.kmax_loss import auxiliary_loss_key
from remax_tf.losses.mask_id import mask_id_fp_fn_parts
from remax_tf.losses.reclass import reclass_targets
from remax_tf.losses.targets import ClassLayout

__all__ = [
    "ClassLayout",
    "KMaXLoss",
    "KMaXLossSettings",
    "auxiliary_loss_key",
    "build_loss",
    "linear_sum_assignment",
    "loss_settings_from_config",
    "mask_id_fp_fn_parts",
    "reclass_targets",
]
