"""The kMaX / ReMaX settings of a config with every default filled in.

DeepLab2 hard-codes these by dataset name. Here an unset field takes the
dataset descriptor's :class:`~remax_tf.data.datasets.KMaXDefaults` or the
DeepLab2 constant named below, so the model builder reads plain values.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

from remax_tf.config.deeplab2_defaults import ASPP_ATROUS_RATES
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.protos import model_pb2

# DeepLab2 model/builder.py, create_kmax_meta_pixel_decoder: per stage from
# stride 32 down to stride 4; stride 2 (Cityscapes) adds one more stage.
PIXEL_DECODER_WIDTHS = (512, 256, 128, 64, 32)
PIXEL_DECODER_NUM_BLOCKS = (1, 5, 1, 1, 1)
PIXEL_DECODER_BLOCK_TYPES = ("axial", "axial", "bottleneck", "bottleneck", "bottleneck")
# DeepLab2 model/builder.py, create_kmax_meta_transformer_decoder: num_blocks
# (2, 2, 2) attending to the pixel-decoder outputs at strides 32, 16, 8.
TRANSFORMER_DECODER_NUM_BLOCKS = (2, 2, 2)
TRANSFORMER_DECODER_STRIDES = (32, 16, 8)
# ReMaX semantic head ASPP rates: kMaX's auxiliary ASPP's.
REMAX_SEMANTIC_HEAD_ATROUS_RATES = ASPP_ATROUS_RATES
BLOCK_TYPES = ("axial", "bottleneck")
REMAX_ACTIVATIONS = ("sigmoid", "softmax")


def check_remax_activation(activation: str, what: str) -> str:
    """``activation`` if it is one of :data:`REMAX_ACTIVATIONS`, else a
    ValueError naming ``what`` uses it and the config field."""
    if activation not in REMAX_ACTIVATIONS:
        raise ValueError(
            f"{what} activation {activation!r} is unknown; known: "
            f"{', '.join(REMAX_ACTIVATIONS)} (model_options.remax.activation)."
        )
    return activation


# Reductions of the sigmoid mask-ID cross-entropy over the NQ slots of a pixel.
MASK_ID_SIGMOID_REDUCTIONS = ("sum", "mean")


@dataclasses.dataclass(frozen=True)
class ReMaXSettings:
    """ReMaX switches (paper Sec. 3): the one resolved object every part reads.

    ``enabled=False`` is plain kMaX. The other defaults equal
    ``protos/model.proto``'s ``ReMaXOptions`` (the paper's choices; a test
    compares them field by field). The model builder, the model's ReMask layer
    and the loss ask the methods below rather than re-deriving them.
    """

    enabled: bool = False
    num_relaxed_stages: int = 4  # paper Table 3: ReMask on the first 4 layers
    semantic_loss_weight: float = 0.5
    eta: float = 0.1  # paper Table 4
    activation: str = "sigmoid"  # paper Table 2
    stop_gradient: bool = True
    semantic_head_channels: int = 256
    semantic_head_atrous_rates: Tuple[int, ...] = REMAX_SEMANTIC_HEAD_ATROUS_RATES
    use_ground_truth_semantic: bool = False
    keep_at_inference: bool = False
    # Stop the panoptic gradient into the class logits p of Eq. (1) (public
    # ReMaX code); False lets the mask losses train p through Eq. (1).
    class_stop_gradient: bool = True
    # ReClass (Eq. 4) on every slot (paper, public code); False: matched only.
    reclass_unmatched_slots: bool = True
    # Sigmoid mask-ID cross-entropy: mean (default) or sum of the per-slot terms.
    mask_id_sigmoid_reduction: str = "mean"

    def relaxed_layers(self, num_layers: int) -> int:
        """How many leading kMaX layers ReMask relaxes: the first
        ``num_relaxed_stages``, or all ``num_layers`` when there are fewer
        (ReMaX-T/S/M have 3 layers, the default N is 4); 0 without ReMaX."""
        if not self.enabled:
            return 0
        return min(self.num_relaxed_stages, num_layers)

    @property
    def builds_semantic_heads(self) -> bool:
        """ReMaX semantic heads predict m_sem, except in the paper's Table 7
        ablation, where ground-truth semantic masks take their place."""
        return self.enabled and not self.use_ground_truth_semantic

    def has_semantic_loss(self, num_layers: int) -> bool:
        """Whether the relaxed layers add their own semantic loss on m_sem."""
        return (
            self.relaxed_layers(num_layers) > 0
            and self.builds_semantic_heads
            and self.semantic_loss_weight != 0.0
        )

    @property
    def mask_id_activation(self) -> str:
        """The mask-ID cross-entropy's activation: ReMaX's (paper Table 2), or
        kMaX's softmax over slots without ReMaX."""
        return self.activation if self.enabled else "softmax"

    @property
    def reclass_eta(self) -> float:
        """ReClass's eta (Eq. 4); 0 (one-hot class targets, kMaX) without ReMaX."""
        return self.eta if self.enabled else 0.0


@dataclasses.dataclass(frozen=True)
class KMaXSettings:
    """Architecture settings of a kMaX-DeepLab model."""

    num_mask_slots: int
    use_auxiliary_semantic_decoder: bool
    pixel_decoder_output_stride: int
    pixel_decoder_widths: Tuple[int, ...]
    pixel_decoder_num_blocks: Tuple[int, ...]
    pixel_decoder_block_types: Tuple[str, ...]
    pixel_decoder_strides: Tuple[int, ...]
    transformer_decoder_num_blocks: Tuple[int, ...]
    transformer_decoder_strides: Tuple[int, ...]
    transformer_decoder_drop_path_keep_prob: float
    transformer_decoder_channels: int
    transformer_decoder_num_heads: int
    transformer_decoder_ffn_channels: int
    class_head_void_prior: float
    remax: ReMaXSettings

    @property
    def num_transformer_layers(self) -> int:
        return sum(self.transformer_decoder_num_blocks)


def _stage_count(output_stride: int) -> int:
    # Stages at strides 32, 16, ..., output_stride.
    count, stride = 1, 32
    while stride > output_stride:
        stride //= 2
        count += 1
    return count


def resolve_remax_settings(options: model_pb2.ModelOptions) -> ReMaXSettings:
    if not options.HasField("remax") or not options.remax.enabled:
        return ReMaXSettings(enabled=False)
    r = options.remax
    return ReMaXSettings(
        enabled=True,
        num_relaxed_stages=r.num_relaxed_stages,
        semantic_loss_weight=r.semantic_loss_weight,
        eta=r.eta,
        activation=r.activation,
        stop_gradient=r.stop_gradient,
        semantic_head_channels=r.semantic_head_channels,
        semantic_head_atrous_rates=(
            tuple(r.semantic_head_atrous_rates) or REMAX_SEMANTIC_HEAD_ATROUS_RATES
        ),
        use_ground_truth_semantic=r.use_ground_truth_semantic,
        keep_at_inference=r.keep_at_inference,
        class_stop_gradient=r.class_stop_gradient,
        reclass_unmatched_slots=r.reclass_unmatched_slots,
        mask_id_sigmoid_reduction=r.mask_id_sigmoid_reduction,
    )


def resolve_kmax_settings(
    options: model_pb2.ModelOptions, descriptor: DatasetDescriptor
) -> KMaXSettings:
    """Fills unset kMaX fields from the dataset's defaults (DeepLab2's)."""
    m = options.max_deeplab
    defaults = descriptor.kmax_defaults

    def pick(field: str):
        return getattr(m, field) if m.HasField(field) else getattr(defaults, field)

    output_stride = pick("pixel_decoder_output_stride")
    stages = _stage_count(output_stride)
    return KMaXSettings(
        num_mask_slots=pick("num_mask_slots"),
        use_auxiliary_semantic_decoder=pick("use_auxiliary_semantic_decoder"),
        pixel_decoder_output_stride=output_stride,
        pixel_decoder_widths=(
            tuple(m.pixel_decoder_widths) or PIXEL_DECODER_WIDTHS[:stages]
        ),
        pixel_decoder_num_blocks=(
            tuple(m.pixel_decoder_num_blocks) or PIXEL_DECODER_NUM_BLOCKS[:stages]
        ),
        pixel_decoder_block_types=(
            tuple(m.pixel_decoder_block_types) or PIXEL_DECODER_BLOCK_TYPES[:stages]
        ),
        pixel_decoder_strides=tuple(32 // 2**i for i in range(stages)),
        transformer_decoder_num_blocks=(
            tuple(m.transformer_decoder_num_blocks) or TRANSFORMER_DECODER_NUM_BLOCKS
        ),
        transformer_decoder_strides=(
            tuple(m.transformer_decoder_strides) or TRANSFORMER_DECODER_STRIDES
        ),
        transformer_decoder_drop_path_keep_prob=pick(
            "transformer_decoder_drop_path_keep_prob"
        ),
        transformer_decoder_channels=m.transformer_decoder_channels,
        transformer_decoder_num_heads=m.transformer_decoder_num_heads,
        transformer_decoder_ffn_channels=m.transformer_decoder_ffn_channels,
        class_head_void_prior=m.class_head_void_prior,
        remax=resolve_remax_settings(options),
    )
