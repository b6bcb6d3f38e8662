"""The full kMaX / ReMaX objective: names, switch, gradients, edge cases, config."""

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config.resolved import ReMaXSettings
from remax_tf.data.datasets import DatasetDescriptor
from remax_tf.losses import KMaXLoss
from remax_tf.losses import KMaXLossSettings
from remax_tf.losses import auxiliary_loss_key
from remax_tf.losses import build_loss
from remax_tf.losses.targets import build_ground_truth
from remax_tf.protos import config_pb2

# DeepLab2's COCO kMaX weights (configs/coco/kmax_deeplab/*.textproto).
KMAX_WEIGHTS = dict(
    pq_style_weight=3.0,
    mask_id_weight=0.3,
    instance_discrimination_weight=1.0,
    semantic_weight=1.0,
)
REMAX_ON = ReMaXSettings(enabled=True, num_relaxed_stages=1, activation="sigmoid")
PANOPTIC_TERMS = (
    common.PQ_STYLE_LOSS_CLASS_TERM,
    common.PQ_STYLE_LOSS_MASK_DICE_TERM,
    common.MASK_ID_CROSS_ENTROPY_LOSS,
)


def _settings(remax=ReMaXSettings(), num_aux=2, **overrides):
    values = dict(KMAX_WEIGHTS, num_auxiliary_outputs=num_aux, remax=remax)
    values.update(overrides)
    return KMaXLossSettings(**values)


def _values(losses):
    return {k: float(v) for k, v in losses.items()}


def test_names_and_total(layout, make_gt, make_pred):
    loss = KMaXLoss(_settings(REMAX_ON), layout)
    losses = loss(make_gt(), make_pred(num_relaxed=1))
    assert tuple(losses) == loss.loss_names
    assert loss.loss_names[:5] == (
        common.PQ_STYLE_LOSS_CLASS_TERM,
        common.PQ_STYLE_LOSS_MASK_DICE_TERM,
        common.MASK_ID_CROSS_ENTROPY_LOSS,
        common.INSTANCE_DISCRIMINATION_LOSS,
        common.SEMANTIC_LOSS,
    )
    assert "aux_0pq_style_loss_class_term" in losses  # DeepLab2's spelling
    assert auxiliary_loss_key(0, common.REMAX_SEMANTIC_LOSS) in losses
    assert auxiliary_loss_key(1, common.REMAX_SEMANTIC_LOSS) not in losses
    assert all(v.shape == () for v in losses.values())
    values = _values(losses)
    total = values.pop(common.TOTAL_LOSS)
    np.testing.assert_allclose(total, sum(values.values()), rtol=1e-6)


def _perfect_prediction(layout, y_true, num_slots=8, confidence=30.0):
    """Slot g predicts ground-truth mask g with its class; void elsewhere."""
    gt = build_ground_truth(y_true, (5, 9), layout)
    masks = gt.pixel_mask_one_hot.numpy()  # [B, P, G=6]
    batch, pixels, num_masks = masks.shape
    slot_masks = np.zeros((batch, pixels, num_slots), np.float32)
    slot_masks[:, :, :num_masks] = masks
    # Pixels in no mask (void, crowd) go to the last slot, which stays unmatched.
    slot_masks[:, :, -1] = 1.0 - masks.sum(-1)
    classes = np.zeros((batch, num_slots, 5), np.float32)
    classes[:, :num_masks, :4] = gt.mask_class_one_hot.numpy()
    classes[:, :, 4] = 1.0 - classes[:, :, :4].sum(-1)
    semantic = np.zeros((batch, pixels, 5), np.float32)
    semantic_ids = (
        y_true[common.GT_SEMANTIC_KEY].numpy()[:, ::2, ::2].reshape(batch, -1)
    )
    semantic[np.arange(batch)[:, None], np.arange(pixels)[None], semantic_ids] = 1.0
    features = np.concatenate([slot_masks, np.zeros_like(slot_masks)], -1)
    return {
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.constant(
            # +c on the slot's mask, -c elsewhere (sigmoid ~0 off the mask).
            confidence * (2.0 * slot_masks - 1.0).reshape(batch, 5, 9, num_slots)
        ),
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.constant(
            confidence * (2.0 * classes - 1.0)
        ),
        common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY: tf.constant(
            features.reshape(batch, 5, 9, -1)
        ),
        common.PRED_SEMANTIC_LOGITS_KEY: tf.constant(
            confidence * semantic.reshape(batch, 5, 9, 5)
        ),
    }


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_perfect_prediction_has_near_zero_loss(layout, make_gt, make_pred, activation):
    y_true = make_gt()
    # ReClass on matched slots only: the unmatched last slot covers the crowd
    # pixels, which carry a thing class in S.
    remax = ReMaXSettings(
        enabled=True,
        num_relaxed_stages=0,
        activation=activation,
        reclass_unmatched_slots=False,
    )
    loss = KMaXLoss(_settings(remax, num_aux=0), layout)
    perfect = _values(loss(y_true, _perfect_prediction(layout, y_true)))
    for term in PANOPTIC_TERMS + (common.SEMANTIC_LOSS,):
        assert 0.0 <= perfect[term] < 1e-3, (term, perfect[term])
    # With ReClass on every slot (the default, as the public ReMaX code), that
    # slot's target gains eta * y_m on the crowd's class: only the class term
    # changes.
    every_slot = KMaXLoss(
        _settings(
            ReMaXSettings(**{**remax.__dict__, "reclass_unmatched_slots": True}),
            num_aux=0,
        ),
        layout,
    )
    softened = _values(every_slot(y_true, _perfect_prediction(layout, y_true)))
    for term in PANOPTIC_TERMS + (common.SEMANTIC_LOSS,):
        if term == common.PQ_STYLE_LOSS_CLASS_TERM:
            assert softened[term] > 1e-2, term
        else:
            assert softened[term] == perfect[term], term
    random = _values(loss(y_true, make_pred(num_slots=8, num_aux=0)))
    for term in PANOPTIC_TERMS + (common.INSTANCE_DISCRIMINATION_LOSS,):
        assert perfect[term] < random[term], term


def test_remax_with_eta_zero_and_no_relaxed_stage_is_kmax(layout, make_gt, make_pred):
    y_true, y_pred = make_gt(), make_pred()
    kmax = _values(KMaXLoss(_settings(), layout)(y_true, y_pred))
    remax = ReMaXSettings(
        enabled=True, num_relaxed_stages=0, eta=0.0, activation="softmax"
    )
    same = _values(KMaXLoss(_settings(remax), layout)(y_true, y_pred))
    assert kmax == same
    # eta > 0 changes the class terms only.
    reclass = _values(
        KMaXLoss(_settings(ReMaXSettings(**{**remax.__dict__, "eta": 0.1})), layout)(
            y_true, y_pred
        )
    )
    for name, value in kmax.items():
        if name.endswith(common.PQ_STYLE_LOSS_CLASS_TERM) or name == common.TOTAL_LOSS:
            assert reclass[name] > value, name
        else:
            assert reclass[name] == value, name


def test_only_the_first_stages_are_relaxed(layout, make_gt, make_pred):
    y_true, y_pred = make_gt(), make_pred(num_relaxed=1)
    remax = ReMaXSettings(enabled=True, num_relaxed_stages=1, eta=0.0)
    plain = ReMaXSettings(enabled=True, num_relaxed_stages=0, eta=0.0)
    relaxed = _values(KMaXLoss(_settings(remax), layout)(y_true, y_pred))
    unrelaxed = _values(KMaXLoss(_settings(plain), layout)(y_true, y_pred))
    for term in (
        common.PQ_STYLE_LOSS_MASK_DICE_TERM,
        common.MASK_ID_CROSS_ENTROPY_LOSS,
    ):
        assert (
            relaxed[auxiliary_loss_key(0, term)]
            != unrelaxed[auxiliary_loss_key(0, term)]
        )
        assert (
            relaxed[auxiliary_loss_key(1, term)]
            == unrelaxed[auxiliary_loss_key(1, term)]
        )
        assert relaxed[term] == unrelaxed[term]  # the final output is never relaxed
    for term in (common.PQ_STYLE_LOSS_CLASS_TERM, common.INSTANCE_DISCRIMINATION_LOSS):
        assert (
            relaxed[auxiliary_loss_key(0, term)]
            == unrelaxed[auxiliary_loss_key(0, term)]
        )


@pytest.mark.parametrize(
    "stop_gradient, class_stop_gradient", [(True, True), (False, False)]
)
def test_gradients_of_relaxed_stage(
    layout, make_gt, make_pred, relax_output, stop_gradient, class_stop_gradient
):
    y_true, y_pred = make_gt(), make_pred(num_relaxed=1)
    aux0 = dict(y_pred[common.PRED_AUXILIARY_OUTPUTS][0])
    m_sem = tf.Variable(aux0[common.PRED_REMAX_SEMANTIC_LOGITS_KEY])
    classes = tf.Variable(aux0[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY])
    remax = ReMaXSettings(
        enabled=True,
        num_relaxed_stages=1,
        stop_gradient=stop_gradient,
        class_stop_gradient=class_stop_gradient,
    )
    loss = KMaXLoss(_settings(remax), layout)
    with tf.GradientTape(persistent=True) as tape:
        # The model's forward pass: ReMask on the layer's outputs, then the loss.
        aux0[common.PRED_REMAX_SEMANTIC_LOGITS_KEY] = m_sem * 1.0
        aux0[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY] = classes * 1.0
        aux0[common.PRED_RELAXED_MASK_LOGITS_KEY] = relax_output(aux0, remax)
        y_pred[common.PRED_AUXILIARY_OUTPUTS] = (aux0,) + y_pred[
            common.PRED_AUXILIARY_OUTPUTS
        ][1:]
        losses = loss(y_true, y_pred)
        panoptic = tf.add_n([losses[auxiliary_loss_key(0, t)] for t in PANOPTIC_TERMS])
        mask_id = losses[auxiliary_loss_key(0, common.MASK_ID_CROSS_ENTROPY_LOSS)]
        semantic = losses[auxiliary_loss_key(0, common.REMAX_SEMANTIC_LOSS)]
    grad = tape.gradient(panoptic, m_sem)
    if stop_gradient:
        assert grad is None or float(tf.norm(grad)) == 0.0
    else:
        assert float(tf.norm(grad)) > 0.0
    # The mask-ID loss could reach the class logits only through Eq. (1);
    # the default (public ReMaX code) stops that gradient.
    grad = tape.gradient(mask_id, classes)
    if class_stop_gradient:
        assert grad is None or float(tf.norm(grad)) == 0.0
    else:
        assert float(tf.norm(grad)) > 0.0
    assert float(tf.norm(tape.gradient(semantic, m_sem))) > 0.0


def test_ground_truth_semantic_ablation(layout, make_gt, make_pred):
    remax = ReMaXSettings(
        enabled=True, num_relaxed_stages=2, use_ground_truth_semantic=True
    )
    loss = KMaXLoss(_settings(remax), layout)
    assert not any(
        name.endswith(common.REMAX_SEMANTIC_LOSS) for name in loss.loss_names
    )
    y_pred = make_pred(num_relaxed=0)  # no m_sem needed
    relaxed = _values(loss(make_gt(), y_pred))
    plain = _values(
        KMaXLoss(_settings(ReMaXSettings(enabled=True, num_relaxed_stages=0)), layout)(
            make_gt(), y_pred
        )
    )
    key = auxiliary_loss_key(0, common.MASK_ID_CROSS_ENTROPY_LOSS)
    assert relaxed[key] != plain[key]


@pytest.fixture(scope="module")
def loss_and_gradient(layout):
    """One traced function for every edge case (same shapes, one trace)."""
    # 2 slots: "normal"/"crowded" crops have 4-6 masks, more than the slots.
    loss = KMaXLoss(
        _settings(
            REMAX_ON,
            instance_discrimination_sample_k=4096,  # more than the 45 pixels
            semantic_sample_k=16,
            semantic_top_k_percent=0.5,
            mask_id_top_k_percent=0.5,
        ),
        layout,
    )

    @tf.function
    def run(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            losses = loss(y_true, y_pred)
        return losses, tape.gradient(losses[common.TOTAL_LOSS], y_pred)

    return run


@pytest.mark.parametrize("kind", ["no_things", "all_void", "one_pixel", "crowded"])
def test_edge_cases_are_finite_in_tf_function(
    make_gt, make_pred, loss_and_gradient, kind
):
    run = loss_and_gradient
    for y_true in (make_gt(kind), make_gt("all_void", batch=2)):
        losses, grads = run(y_true, make_pred(num_slots=2, num_relaxed=1))
        values = _values(losses)
        assert all(np.isfinite(v) for v in values.values()), values
        for grad in tf.nest.flatten(grads):
            assert grad is None or np.isfinite(grad.numpy()).all()
        # Pixels of unmatched masks are left out of the mask-ID loss (DeepLab2
        # would give them a loss of about 1e5).
        assert values[common.MASK_ID_CROSS_ENTROPY_LOSS] < 50.0


def test_all_void_crop_gives_zero_panoptic_loss_except_void_class(
    layout, make_gt, make_pred
):
    values = _values(KMaXLoss(_settings(), layout)(make_gt("all_void"), make_pred()))
    for term in (
        common.PQ_STYLE_LOSS_MASK_DICE_TERM,
        common.MASK_ID_CROSS_ENTROPY_LOSS,
        common.INSTANCE_DISCRIMINATION_LOSS,
        common.SEMANTIC_LOSS,
    ):
        assert values[term] == 0.0, term
    assert values[common.PQ_STYLE_LOSS_CLASS_TERM] > 0.0  # every slot -> void


def test_tf_function_matches_eager(layout, make_gt, make_pred):
    loss = KMaXLoss(_settings(REMAX_ON), layout)
    y_true, y_pred = make_gt("crowded"), make_pred(num_relaxed=1)
    eager = _values(loss(y_true, y_pred))
    graph = _values(tf.function(loss)(y_true, y_pred))
    for name in eager:
        np.testing.assert_allclose(graph[name], eager[name], rtol=1e-5, err_msg=name)


def test_nan_prediction_gives_nan_loss(layout, make_gt, make_pred):
    y_pred = make_pred(num_aux=0)
    logits = y_pred[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].numpy()
    logits[0, 2, 2, 0] = np.nan
    y_pred[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY] = tf.constant(logits)
    values = _values(KMaXLoss(_settings(num_aux=0), layout)(make_gt(), y_pred))
    assert np.isnan(values[common.MASK_ID_CROSS_ENTROPY_LOSS])
    assert np.isnan(values[common.TOTAL_LOSS])


def test_contract_errors(layout, make_gt, make_pred):
    with pytest.raises(ValueError, match="num_relaxed_stages"):
        KMaXLoss(_settings(ReMaXSettings(enabled=True, num_relaxed_stages=-1)), layout)
    loss = KMaXLoss(_settings(REMAX_ON), layout)
    with pytest.raises(ValueError, match="2 auxiliary outputs"):
        loss(make_gt(), make_pred(num_aux=1, num_relaxed=1))
    with pytest.raises(KeyError, match=common.PRED_RELAXED_MASK_LOGITS_KEY):
        loss(make_gt(), make_pred(num_relaxed=0))
    with pytest.raises(ValueError, match="things-then-stuff"):
        loss(make_gt(), make_pred(num_relaxed=1, num_classes=5))


CONFIG = """
model_options {
  backbone { name: "kmax_resnet50" }
  max_deeplab {
    instance_discrimination_sample_k: 4096
    instance_discrimination_sample_temperature: 1.5
    semantic_sample_k: 4096
    semantic_sample_temperature: 2.0
    transformer_decoder_num_blocks: [1, 1, 1]
  }
  %s
}
trainer_options {
  loss_options {
    semantic_loss { name: "softmax_cross_entropy" weight: 1.0 top_k_percent: 0.2 }
    pq_style_loss { weight: 3.0 }
    mask_id_cross_entropy_loss { weight: 0.3 }
    instance_discrimination_loss { weight: 1.0 }
  }
}
"""


def _descriptor(layout):
    return DatasetDescriptor(
        name="toy",
        num_classes=5,
        ignore_label=0,
        panoptic_label_divisor=256,
        class_has_instances_list=(1, 2),
        class_names=("void", "a", "b", "c", "d"),
        class_colors=((0, 0, 0),) * 5,
        original_category_ids=(0, 1, 2, 3, 4),
    )


def _config(remax_block=""):

    return text_format.Parse(CONFIG % remax_block, config_pb2.ExperimentOptions())


def test_build_loss_from_config(layout):
    kmax = build_loss(_config(), _descriptor(layout))
    s = kmax.settings
    assert (s.pq_style_weight, s.mask_id_weight, s.semantic_weight) == pytest.approx(
        (3.0, 0.3, 1.0)
    )
    assert s.semantic_top_k_percent == pytest.approx(0.2)
    assert (s.instance_discrimination_sample_k, s.semantic_sample_k) == (4096, 4096)
    assert s.num_auxiliary_outputs == 3
    assert s.remax.mask_id_activation == "softmax" and s.remax.reclass_eta == 0.0
    assert kmax.layout == layout
    assert len(kmax.loss_names) == 5 + 3 * 4 + 1
    remax = build_loss(_config("remax { num_relaxed_stages: 2 }"), _descriptor(layout))
    assert remax.settings.remax.mask_id_activation == "sigmoid"
    assert remax.settings.remax.reclass_eta == pytest.approx(0.1)
    assert remax.settings.num_relaxed_stages == 2
    assert auxiliary_loss_key(1, common.REMAX_SEMANTIC_LOSS) in remax.loss_names
    # The default 4 relaxed stages on a 3-layer decoder relax all 3 layers.
    default = build_loss(_config("remax {}"), _descriptor(layout))
    assert default.settings.num_relaxed_stages == 3
    assert auxiliary_loss_key(2, common.REMAX_SEMANTIC_LOSS) in default.loss_names
