"""Builds the kMaX / ReMaX objective from an experiment config.

The config stops here: ``loss_settings_from_config`` reads
``trainer_options.loss_options`` (weights, top-k), ``model_options.max_deeplab``
(pixel sampling) and ``model_options.remax`` (through
``remax_tf.config.resolved``) into plain ``KMaXLossSettings``. A loss is on
when its ``loss_options`` entry is present with a non-zero weight, as in
DeepLab2 (model/loss/loss_builder.py); DeepLab2's kMaX configs use PQ-style 3.0,
mask-ID 0.3, instance discrimination 1.0 and semantic 1.0.
"""

from __future__ import annotations

from remax_tf.config.errors import ConfigError
from remax_tf.config.resolved import resolve_kmax_settings
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.losses.kmax_loss import KMaXLoss
from remax_tf.losses.kmax_loss import KMaXLossSettings
from remax_tf.losses.targets import ClassLayout

# DeepLab2's only semantic loss name (loss_builder.py).
SEMANTIC_LOSS_NAMES = ("", "softmax_cross_entropy")
# Loss fields of DeepLab2's LossOptions that kMaX has no output for.
NON_KMAX_LOSSES = (
    "center_loss",
    "regression_loss",
    "motion_loss",
    "next_regression_loss",
    "depth_loss",
)


def _weight(options, field: str) -> float:
    return getattr(options, field).weight if options.HasField(field) else 0.0


def _top_k(options, field: str) -> float:
    return getattr(options, field).top_k_percent if options.HasField(field) else 1.0


def loss_settings_from_config(
    config, descriptor: DatasetDescriptor
) -> KMaXLossSettings:
    """Translates an ExperimentOptions proto into ``KMaXLossSettings``."""
    loss_options = config.trainer_options.loss_options
    model_options = config.model_options
    if loss_options.HasField("semantic_loss"):
        name = loss_options.semantic_loss.name
        if name not in SEMANTIC_LOSS_NAMES:
            raise ConfigError(
                f"trainer_options.loss_options.semantic_loss.name is {name!r}; the "
                "kMaX semantic loss is 'softmax_cross_entropy'."
            )
    for field in NON_KMAX_LOSSES:
        if loss_options.HasField(field):
            raise ConfigError(
                f"trainer_options.loss_options.{field} is set, but kMaX-DeepLab has "
                "no such output. Fix: remove it (kMaX uses pq_style_loss, "
                "mask_id_cross_entropy_loss, instance_discrimination_loss, "
                "semantic_loss)."
            )
    kmax = resolve_kmax_settings(model_options, descriptor)
    max_deeplab = model_options.max_deeplab
    return KMaXLossSettings(
        pq_style_weight=_weight(loss_options, "pq_style_loss"),
        mask_id_weight=_weight(loss_options, "mask_id_cross_entropy_loss"),
        mask_id_top_k_percent=_top_k(loss_options, "mask_id_cross_entropy_loss"),
        instance_discrimination_weight=_weight(
            loss_options, "instance_discrimination_loss"
        ),
        instance_discrimination_top_k_percent=_top_k(
            loss_options, "instance_discrimination_loss"
        ),
        instance_discrimination_sample_k=max_deeplab.instance_discrimination_sample_k,
        instance_discrimination_sample_temperature=(
            max_deeplab.instance_discrimination_sample_temperature
        ),
        semantic_weight=_weight(loss_options, "semantic_loss"),
        semantic_top_k_percent=_top_k(loss_options, "semantic_loss"),
        semantic_sample_k=max_deeplab.semantic_sample_k,
        semantic_sample_temperature=max_deeplab.semantic_sample_temperature,
        num_auxiliary_outputs=kmax.num_transformer_layers,
        remax=kmax.remax,
    )


def build_loss(config, descriptor: DatasetDescriptor) -> KMaXLoss:
    """The kMaX / ReMaX objective of an experiment config."""
    return KMaXLoss(
        loss_settings_from_config(config, descriptor),
        ClassLayout.from_descriptor(descriptor),
    )
