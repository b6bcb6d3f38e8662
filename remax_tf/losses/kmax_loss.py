"""The kMaX-DeepLab / ReMaX training objective.

``KMaXLoss`` takes plain settings (``builder.build_loss`` reads the config).
Mirrors DeepLab2's ``MaXDeepLabLoss.call``:

1. ground truth at the mask-logit resolution (``targets.py``);
2. Hungarian matching on the final prediction only (``matching.py``); the
   matching, the matched dice / class probabilities and the void-overlap
   ratios of the final prediction are shared by every auxiliary output;
3. for the final output and each auxiliary output: PQ-style class and mask
   dice terms, mask-ID cross-entropy, instance discrimination;
4. kMaX's auxiliary semantic loss on the final prediction.

With ReMaX on (paper Sec. 3): the mask-ID cross-entropy uses the ReMaX
activation on every output; the first ``remax.relaxed_layers(N)`` auxiliary
outputs compute their PQ-style dice term and mask-ID cross-entropy on the
relaxed logits the model's ReMask layer gives them (Eq. 1-2,
``PRED_RELAXED_MASK_LOGITS_KEY``) and add their own semantic loss on m_sem;
every class term uses ReClass targets (Eq. 3-4, on every slot) from that
output's own un-relaxed m_pan. The final output is never relaxed. In the
paper's Table 7 ablation (ground-truth semantic masks) the model has no
semantic heads, so the loss relaxes with the same ``ReMask`` layer class fed
the ground truth.

Scaling for tf.distribute: every returned value is the mean over the
replica's local batch of per-sample losses (each already weighted). The
trainer takes gradients of ``TOTAL_LOSS / strategy.num_replicas_in_sync``,
which with equal per-replica batches is the global-batch mean, as DeepLab2's
trainer does; logged values are averaged across replicas. NaN or Inf values
are returned as they are: the trainer must stop on them.
"""

from __future__ import annotations

import dataclasses
from typing import Dict
from typing import List
from typing import Mapping
from typing import NamedTuple
from typing import Tuple

import tensorflow as tf

from remax_tf import common
from remax_tf.config.resolved import ReMaXSettings
from remax_tf.losses import instance_discrimination
from remax_tf.losses import mask_id
from remax_tf.losses import pq_style
from remax_tf.losses import semantic
from remax_tf.losses.matching import Matching
from remax_tf.losses.matching import match_predictions
from remax_tf.losses.predictions import collect_outputs
from remax_tf.losses.reclass import reclass_targets
from remax_tf.losses.reduction import check_top_k_percent
from remax_tf.losses.sampling import area_sampling_logits
from remax_tf.losses.sampling import gumbel_top_k_indices
from remax_tf.losses.targets import ClassLayout
from remax_tf.losses.targets import GroundTruth
from remax_tf.losses.targets import build_ground_truth
from remax_tf.model.remask import ReMask

# DeepLab2 names the auxiliary terms 'aux_<i>' + term, e.g.
# 'aux_0pq_style_loss_class_term' (max_deeplab_loss.py); kept for
# TensorBoard compatibility.
AUXILIARY_PREFIX = "aux_"


def auxiliary_loss_key(index: int, term: str) -> str:
    """Loss-dict key of ``term`` for auxiliary output ``index`` (0-based)."""
    return f"{AUXILIARY_PREFIX}{index}{term}"


def flatten_pixels(tensor: tf.Tensor) -> tf.Tensor:
    """[B, h, w, C] -> [B, h * w, C] (static h, w and C), as the losses read."""
    height, width, channels = tensor.shape[1:]
    return tf.reshape(tensor, [tf.shape(tensor)[0], height * width, channels])


class MatchedPrediction(NamedTuple):
    """What every output's loss terms share (steps 1-2 of the objective)."""

    # [final, aux_0, aux_1, ...] as ``collect_outputs`` returns them (float32).
    outputs: List[Dict[str, tf.Tensor]]
    # The ground truth at the mask-logit resolution.
    ground_truth: GroundTruth
    # The Hungarian matching of the final prediction, used by every output.
    matching: Matching


@dataclasses.dataclass(frozen=True)
class KMaXLossSettings:
    """Plain settings of the kMaX / ReMaX objective (weight 0: term off).

    Defaults are DeepLab2's (max_deeplab_loss.py, config proto defaults).
    """

    pq_style_weight: float = 0.0
    mask_id_weight: float = 0.0
    mask_id_top_k_percent: float = 1.0
    instance_discrimination_weight: float = 0.0
    instance_discrimination_top_k_percent: float = 1.0
    instance_discrimination_sample_k: int = 0
    instance_discrimination_sample_temperature: float = 0.6
    instance_discrimination_temperature: float = (
        instance_discrimination.INSTANCE_DISCRIMINATION_TEMPERATURE
    )
    semantic_weight: float = 0.0
    semantic_top_k_percent: float = 1.0
    semantic_sample_k: int = 0
    semantic_sample_temperature: float = 1.0
    focal_loss_alpha: float = pq_style.FOCAL_LOSS_ALPHA
    num_auxiliary_outputs: int = 0
    remax: ReMaXSettings = ReMaXSettings()

    @property
    def num_relaxed_stages(self) -> int:
        """Relaxed auxiliary outputs (``ReMaXSettings.relaxed_layers``)."""
        return self.remax.relaxed_layers(self.num_auxiliary_outputs)

    @property
    def has_remax_semantic_loss(self) -> bool:
        return self.remax.has_semantic_loss(self.num_auxiliary_outputs)


class KMaXLoss:
    """kMaX-DeepLab's losses, with ReMaX's relaxations when enabled.

    ``loss(y_true, y_pred)`` returns a dict of scalar tensors (local-batch
    means, already weighted): the terms of ``loss_names`` and TOTAL_LOSS, their
    sum. Usable inside ``tf.function``; shapes must be static except batch.
    """

    def __init__(self, settings: KMaXLossSettings, layout: ClassLayout):
        self.settings = settings
        self.layout = layout
        s = settings
        check_top_k_percent(s.mask_id_top_k_percent, "mask_id_cross_entropy_loss")
        check_top_k_percent(
            s.instance_discrimination_top_k_percent, "instance_discrimination_loss"
        )
        check_top_k_percent(s.semantic_top_k_percent, "semantic_loss")
        mask_id.check_activation(s.remax.mask_id_activation)
        if s.remax.enabled and s.remax.num_relaxed_stages < 0:
            raise ValueError(
                f"ReMaX num_relaxed_stages={s.remax.num_relaxed_stages} must be >= 0. "
                "Fix model_options.remax.num_relaxed_stages."
            )
        for name in ("instance_discrimination_sample_k", "semantic_sample_k"):
            if getattr(s, name) < 0:
                raise ValueError(
                    f"max_deeplab.{name} must be >= 0, got {getattr(s, name)}."
                )
        # Table 7 ablation only: the model has no semantic heads to relax with.
        self._ground_truth_remask = (
            ReMask.from_settings(s.remax) if s.remax.use_ground_truth_semantic else None
        )

    # ------------------------------------------------------------------
    # Names.
    def _per_output_terms(self) -> List[str]:
        s = self.settings
        terms = []
        if s.pq_style_weight:
            terms += [
                common.PQ_STYLE_LOSS_CLASS_TERM,
                common.PQ_STYLE_LOSS_MASK_DICE_TERM,
            ]
        if s.mask_id_weight:
            terms.append(common.MASK_ID_CROSS_ENTROPY_LOSS)
        if s.instance_discrimination_weight:
            terms.append(common.INSTANCE_DISCRIMINATION_LOSS)
        return terms

    @property
    def loss_names(self) -> Tuple[str, ...]:
        """Every key ``__call__`` returns, TOTAL_LOSS last."""
        s = self.settings
        terms = self._per_output_terms()
        names = list(terms)
        if s.semantic_weight:
            names.append(common.SEMANTIC_LOSS)
        for index in range(s.num_auxiliary_outputs):
            names += [auxiliary_loss_key(index, term) for term in terms]
            if s.has_remax_semantic_loss and index < s.num_relaxed_stages:
                names.append(auxiliary_loss_key(index, common.REMAX_SEMANTIC_LOSS))
        names.append(common.TOTAL_LOSS)
        return tuple(names)

    # ------------------------------------------------------------------
    def __call__(
        self, y_true: Mapping[str, tf.Tensor], y_pred: Mapping[str, tf.Tensor]
    ) -> Dict[str, tf.Tensor]:
        s = self.settings
        needs_matching = bool(s.pq_style_weight or s.mask_id_weight)
        if needs_matching:
            outputs, gt, matching = self.match(y_true, y_pred)
            final_logits = flatten_pixels(
                outputs[0][common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY]
            )
            # Shared by all outputs, from the final prediction (DeepLab2).
            void_ratio = pq_style.void_overlap_ratio(
                tf.nn.softmax(final_logits, axis=-1), gt.pixel_non_void
            )
            class_weights = pq_style.class_term_weights(
                matching.slot_matched, matching.matched_mask_dice, void_ratio
            )
            valid_pixels = tf.reduce_sum(gt.pixel_mask_one_hot, axis=-1)
        else:
            outputs, gt = self._outputs_and_ground_truth(y_true, y_pred)
        final = outputs[0]

        losses: Dict[str, tf.Tensor] = {}
        for index, output in enumerate(outputs):
            # DeepLab2 order: the final output first, then aux_0, aux_1, ...
            def key(term, index=index):
                return term if index == 0 else auxiliary_loss_key(index - 1, term)

            m_pan = flatten_pixels(output[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY])
            class_logits = output[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY]
            relaxed = 0 < index <= s.num_relaxed_stages
            m_loss = m_pan
            if relaxed and needs_matching:
                m_loss = self._relaxed_logits(output, m_pan, class_logits, gt)
            if s.pq_style_weight:
                soft_targets = reclass_targets(
                    m_pan,
                    gt.pixel_class_one_hot,
                    matching.slot_class_one_hot,
                    s.remax.reclass_eta,
                    soften_unmatched=s.remax.reclass_unmatched_slots,
                )
                losses[key(common.PQ_STYLE_LOSS_CLASS_TERM)] = s.pq_style_weight * (
                    pq_style.class_term(
                        class_logits,
                        pq_style.class_term_targets(
                            soft_targets, matching.slot_matched
                        ),
                        class_weights,
                        s.focal_loss_alpha,
                    )
                )
                losses[key(common.PQ_STYLE_LOSS_MASK_DICE_TERM)] = (
                    s.pq_style_weight
                    * pq_style.mask_dice_term(
                        m_loss,
                        matching.slot_pixel_targets,
                        valid_pixels,
                        matching.slot_matched,
                        matching.matched_class_prob,
                        s.focal_loss_alpha,
                    )
                )
            if s.mask_id_weight:
                losses[key(common.MASK_ID_CROSS_ENTROPY_LOSS)] = s.mask_id_weight * (
                    mask_id.mask_id_cross_entropy(
                        m_loss,
                        matching.slot_pixel_targets,
                        gt.pixel_non_void,
                        s.remax.mask_id_activation,
                        s.mask_id_top_k_percent,
                        s.remax.mask_id_sigmoid_reduction,
                    )
                )
            if s.instance_discrimination_weight:
                feature = flatten_pixels(
                    output[common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY]
                )
                losses[key(common.INSTANCE_DISCRIMINATION_LOSS)] = (
                    s.instance_discrimination_weight
                    * self._instance_discrimination(feature, gt)
                )
            if relaxed and s.has_remax_semantic_loss:
                losses[key(common.REMAX_SEMANTIC_LOSS)] = (
                    s.remax.semantic_loss_weight
                    * semantic.remax_semantic_loss(
                        output[common.PRED_REMAX_SEMANTIC_LOGITS_KEY], gt
                    )
                )
        if s.semantic_weight:
            losses[common.SEMANTIC_LOSS] = s.semantic_weight * self._semantic(
                y_true, final, gt
            )

        result = {name: tf.reduce_mean(losses[name]) for name in self.loss_names[:-1]}
        result[common.TOTAL_LOSS] = tf.add_n(list(result.values()))
        return result

    def match(
        self, y_true: Mapping[str, tf.Tensor], y_pred: Mapping[str, tf.Tensor]
    ) -> MatchedPrediction:
        """The outputs the loss reads, the ground truth and the matching of the
        final prediction, as ``__call__`` computes them before any loss term
        (for analyses of the loss terms, e.g. ``benchmarks/fp_fn_ratio.py``)."""
        outputs, gt = self._outputs_and_ground_truth(y_true, y_pred)
        final = outputs[0]
        matching = match_predictions(
            gt,
            flatten_pixels(final[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY]),
            final[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY],
        )
        return MatchedPrediction(outputs, gt, matching)

    def _outputs_and_ground_truth(
        self, y_true: Mapping[str, tf.Tensor], y_pred: Mapping[str, tf.Tensor]
    ) -> Tuple[List[Dict[str, tf.Tensor]], GroundTruth]:
        s = self.settings
        outputs = collect_outputs(
            y_pred,
            self.layout,
            num_auxiliary_outputs=s.num_auxiliary_outputs,
            num_relaxed_stages=s.num_relaxed_stages,
            needs_semantic_logits=bool(s.semantic_weight),
            needs_relaxed_mask_logits=s.remax.builds_semantic_heads,
            needs_remax_semantic_logits=s.has_remax_semantic_loss,
            needs_pixel_feature=bool(s.instance_discrimination_weight),
        )
        height, width = outputs[0][common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape[1:3]
        return outputs, build_ground_truth(y_true, (height, width), self.layout)

    def _relaxed_logits(
        self, output, m_pan, class_logits, gt: GroundTruth
    ) -> tf.Tensor:
        """m_pan_hat (Eq. 1-2) of one relaxed auxiliary output, flat [B, P, NQ]."""
        if self._ground_truth_remask is not None:
            # Paper Table 7 ablation: ground-truth masks in place of act(m_sem).
            return self._ground_truth_remask(
                [m_pan, gt.pixel_class_one_hot, class_logits], training=True
            )
        relaxed = output[common.PRED_RELAXED_MASK_LOGITS_KEY]
        return tf.reshape(relaxed, tf.shape(m_pan))

    def _instance_discrimination(
        self, feature: tf.Tensor, gt: GroundTruth
    ) -> tf.Tensor:
        s = self.settings
        if s.instance_discrimination_sample_k > 0:
            indices = gumbel_top_k_indices(
                area_sampling_logits(
                    gt.inverse_pixel_mask_area,
                    gt.pixel_non_void,
                    s.instance_discrimination_sample_temperature,
                ),
                s.instance_discrimination_sample_k,
            )
            return instance_discrimination.pixel_contrastive_loss(
                feature,
                gt.pixel_mask_one_hot,
                indices,
                s.instance_discrimination_temperature,
                s.instance_discrimination_top_k_percent,
            )
        return instance_discrimination.mask_average_loss(
            feature,
            gt.pixel_mask_one_hot,
            gt.mask_area,
            gt.mask_non_void,
            gt.pixel_thing,
            s.instance_discrimination_temperature,
            s.instance_discrimination_top_k_percent,
        )

    def _semantic(self, y_true, final, gt: GroundTruth) -> tf.Tensor:
        s = self.settings
        semantic_gt = y_true[common.GT_SEMANTIC_KEY]
        weights = y_true.get(common.SEMANTIC_LOSS_WEIGHT_KEY)
        if weights is None:
            weights = tf.ones_like(semantic_gt, tf.float32)
        return semantic.kmax_semantic_loss(
            final[common.PRED_SEMANTIC_LOGITS_KEY],
            semantic_gt,
            weights,
            self.layout.ignore_label,
            s.semantic_top_k_percent,
            s.semantic_sample_k,
            s.semantic_sample_temperature,
            gt,
        )
