"""Builds a kMaX-DeepLab / ReMaX model from an ``ExperimentOptions`` config.

The only model code that reads the config. Every kMaX and ReMaX setting comes
from :func:`remax_tf.config.resolved.resolve_kmax_settings` (dataset defaults
filled in); DeepLab2's own fields (pixel-space head, auxiliary semantic
branch, decoder options) are read here, with DeepLab2's kMaX values when a
config leaves them unset.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Optional

from remax_tf.config.dataset_choice import TRAIN
from remax_tf.config.dataset_choice import dataset_descriptor
from remax_tf.config.deeplab2_defaults import ASPP_ATROUS_RATES
from remax_tf.config.errors import ConfigError
from remax_tf.config.resolved import KMaXSettings
from remax_tf.config.resolved import resolve_kmax_settings
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.model.heads.auxiliary_semantic_head import AuxiliarySemanticHead
from remax_tf.model.heads.kmax_prediction_head import KMaXPredictionHead
from remax_tf.model.heads.remax_semantic_head import ReMaXSemanticHead
from remax_tf.model.kmax_deeplab import KMaXDeepLab
from remax_tf.model.layers.batch_norm import norm_layer_factory
from remax_tf.model.pixel_decoder.kmax_pixel_decoder import KMaXPixelDecoder
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.remask import ReMask
from remax_tf.model.transformer_decoder.kmax_decoder import KMaXTransformerDecoder
from remax_tf.protos import config_pb2

# DeepLab2 kMaX configs (configs/*/kmax_deeplab/*.textproto), used when a
# config leaves these fields at 0 / empty.
PIXEL_SPACE_HEAD_CHANNELS = 256
PIXEL_EMBEDDING_CHANNELS = 128
AUXILIARY_SEMANTIC_HEAD_CHANNELS = 256
AUXILIARY_LOW_LEVEL = (("res3", 64), ("res2", 32))
# DeepLab2 transformer_decoder/kmax.py sets endpoints['feature_semantic'] to
# the backbone's stage5, which decoder.feature_key names in kMaX configs.
ENDPOINT_ALIASES = {"feature_semantic": "stage5"}
# kMaX uses GELU in every decoder and head layer (DeepLab2 kmax_deeplab.py).
ACTIVATION = "gelu"


def bn_config_from_solver(config: config_pb2.ExperimentOptions) -> Dict[str, Any]:
    """``bn_config`` from ``trainer_options.solver_options``."""
    solver = config.trainer_options.solver_options
    return {
        "momentum": solver.batchnorm_momentum,
        "epsilon": solver.batchnorm_epsilon,
        "synchronized": solver.use_sync_batchnorm,
    }


def _prediction_head_config(
    config: config_pb2.ExperimentOptions,
    descriptor: DatasetDescriptor,
    settings: KMaXSettings,
) -> Dict[str, Any]:
    head = config.model_options.max_deeplab.pixel_space_head
    return {
        "num_classes_with_void": descriptor.num_class_head_outputs,
        "pixel_head_channels": head.head_channels or PIXEL_SPACE_HEAD_CHANNELS,
        "embedding_channels": head.output_channels or PIXEL_EMBEDDING_CHANNELS,
        "head_conv_type": head.head_conv_type,
        "void_prior": settings.class_head_void_prior,
    }


def _uses_auxiliary_semantic_head(config: config_pb2.ExperimentOptions) -> bool:
    """DeepLab2 always builds it; here a config opts out by omitting the
    ``auxiliary_semantic_head`` block or by a zero semantic-loss weight."""
    if not config.model_options.max_deeplab.HasField("auxiliary_semantic_head"):
        return False
    losses = config.trainer_options.loss_options
    return not (losses.HasField("semantic_loss") and losses.semantic_loss.weight == 0)


def _auxiliary_semantic_head(
    config: config_pb2.ExperimentOptions,
    descriptor: DatasetDescriptor,
    settings: KMaXSettings,
    bn_config: Dict[str, Any],
) -> Optional[AuxiliarySemanticHead]:
    """kMaX's auxiliary semantic branch (training only), or None."""
    if not _uses_auxiliary_semantic_head(config):
        return None
    m = config.model_options.max_deeplab
    decoder = config.model_options.decoder
    head = m.auxiliary_semantic_head
    if head.output_channels and head.output_channels != descriptor.num_classes:
        raise ConfigError(
            "model_options.max_deeplab.auxiliary_semantic_head.output_channels = "
            f"{head.output_channels}, but dataset {descriptor.name!r} has "
            f"num_classes = {descriptor.num_classes}. Fix: set it to "
            f"{descriptor.num_classes} or remove it."
        )
    low_level = [(ll.feature_key, ll.channels_project) for ll in m.auxiliary_low_level]
    low_level = low_level or list(AUXILIARY_LOW_LEVEL)
    high_level_key = decoder.feature_key or "feature_semantic"
    return AuxiliarySemanticHead(
        descriptor.num_classes,
        high_level_key=ENDPOINT_ALIASES.get(high_level_key, high_level_key),
        low_level_keys=[key for key, _ in low_level],
        low_level_channels_project=[channels for _, channels in low_level],
        use_decoder=settings.use_auxiliary_semantic_decoder,
        head_channels=head.head_channels or AUXILIARY_SEMANTIC_HEAD_CHANNELS,
        head_conv_type=head.head_conv_type,
        decoder_config={
            "aspp_channels": decoder.aspp_channels,
            "atrous_rates": list(decoder.atrous_rates) or list(ASPP_ATROUS_RATES),
            "aspp_use_only_1x1_proj_conv": decoder.aspp_use_only_1x1_proj_conv,
            "decoder_channels": decoder.decoder_channels,
            "decoder_conv_type": decoder.decoder_conv_type,
        },
        activation=ACTIVATION,
        bn_config=bn_config,
        name="auxiliary_semantic",
    )


def _pixel_encoder(config: config_pb2.ExperimentOptions, bn_config: Dict[str, Any]):
    backbone = config.model_options.backbone
    kwargs: Dict[str, Any] = {
        "drop_path_keep_prob": backbone.drop_path_keep_prob,
        "norm_layer": norm_layer_factory(bn_config),
        "pretrained_weights": backbone.pretrained_weights or None,
    }
    # Unset: each backbone keeps its own default (DeepLab2's kMaX schedule).
    if backbone.HasField("drop_path_schedule"):
        kwargs["drop_path_schedule"] = backbone.drop_path_schedule
    return build_pixel_encoder(backbone.name, **kwargs)


def build_model(
    config: config_pb2.ExperimentOptions,
    descriptor: Optional[DatasetDescriptor] = None,
) -> KMaXDeepLab:
    """Builds the (unbuilt) Keras model described by ``config``.

    Args:
      config: A loaded ``ExperimentOptions`` with a ``max_deeplab`` block.
      descriptor: The dataset; default: the config's training dataset
        (:func:`remax_tf.config.dataset_choice.dataset_name`).

    Returns:
      A :class:`KMaXDeepLab`. Its variables are created on the first call;
      calling it with ``training=False`` first creates only the inference
      variables.

    Raises:
      ConfigError: If the config is not a kMaX config or contradicts the
        dataset.
    """
    meta = config.model_options.WhichOneof("meta_architecture")
    if meta != "max_deeplab":
        raise ConfigError(
            "model_options: remax_tf builds kMaX-DeepLab only; set a "
            f"`max_deeplab {{ ... }}` block (found meta_architecture = {meta!r})."
        )
    if descriptor is None:
        descriptor = dataset_descriptor(config, TRAIN)
    settings = resolve_kmax_settings(config.model_options, descriptor)
    bn_config = bn_config_from_solver(config)
    head_config = _prediction_head_config(config, descriptor, settings)

    pixel_decoder = KMaXPixelDecoder(
        settings.pixel_decoder_widths,
        settings.pixel_decoder_num_blocks,
        settings.pixel_decoder_block_types,
        activation=ACTIVATION,
        bn_config=bn_config,
        name="kmax_pixel_decoder",
    )
    transformer_decoder = KMaXTransformerDecoder(
        settings.num_mask_slots,
        num_blocks=settings.transformer_decoder_num_blocks,
        strides=settings.transformer_decoder_strides,
        channels=settings.transformer_decoder_channels,
        num_heads=settings.transformer_decoder_num_heads,
        ffn_channels=settings.transformer_decoder_ffn_channels,
        drop_path_keep_prob=settings.transformer_decoder_drop_path_keep_prob,
        activation=ACTIVATION,
        prediction_head_config=head_config,
        bn_config=bn_config,
        name="kmax_transformer_decoder",
    )
    predictor = KMaXPredictionHead(
        activation=ACTIVATION, bn_config=bn_config, name="predictor", **head_config
    )
    remax = settings.remax
    remax_heads = []
    if remax.builds_semantic_heads:
        remax_heads = [
            ReMaXSemanticHead(
                descriptor.num_thing_stuff_classes,
                channels=remax.semantic_head_channels,
                atrous_rates=remax.semantic_head_atrous_rates,
                activation=ACTIVATION,
                bn_config=bn_config,
                name=f"remax_semantic_head_{index}",
            )
            for index in range(remax.relaxed_layers(settings.num_transformer_layers))
        ]
    return KMaXDeepLab(
        pixel_encoder=_pixel_encoder(config, bn_config),
        pixel_decoder=pixel_decoder,
        transformer_decoder=transformer_decoder,
        predictor=predictor,
        auxiliary_semantic_head=_auxiliary_semantic_head(
            config, descriptor, settings, bn_config
        ),
        remax_semantic_heads=remax_heads,
        remask=ReMask.from_settings(remax, name="remask") if remax_heads else None,
        keep_remax_at_inference=remax.enabled and remax.keep_at_inference,
    )
