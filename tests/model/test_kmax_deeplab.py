"""The composed model on the demo config at 65x65 with 8 mask slots.

Checks the output contract shared with the losses and the evaluator, which
layers exist at inference, determinism, and checkpointing.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.config import ConfigError
from remax_tf.config import load_config
from remax_tf.model import build_model
from remax_tf.model.remask import ReMask

CROP = 65
SLOTS = 8
NUM_CLASSES = 8  # shapes_panoptic semantic ids, void 0 included
NUM_THING_STUFF = 7
ENV = {"REMAX_DATA_DIR": "/tmp/unused"}
BASE_OVERRIDES = (f"model_options.max_deeplab.num_mask_slots={SLOTS}",)


def _config(repo_root, name="shapes_remax", overrides=()):
    return load_config(
        str(repo_root / "configs" / "demo" / f"{name}.textproto"),
        BASE_OVERRIDES + tuple(overrides),
        environ=ENV,
    )


def _images(seed=0, batch=2):
    return tf.random.stateless_uniform([batch, CROP, CROP, 3], [seed, 1], 0.0, 255.0)


def _signature(variables):
    return [(v.name, tuple(v.shape.as_list())) for v in variables]


@pytest.fixture(scope="module")
def remax_model(repo_root):
    """Demo ReMaX model; inference call first, then one training call."""
    tf_keras.utils.set_random_seed(0)
    model = build_model(_config(repo_root))
    inference = model(_images(), training=False)
    inference_signature = _signature(model.variables)
    training_only_before = list(model.training_only_variables)
    training = model(_images(), training=True)
    return {
        "model": model,
        "inference": inference,
        "training": training,
        "inference_signature": inference_signature,
        "training_only_before": training_only_before,
    }


def test_inference_outputs_are_the_final_predictions_only(remax_model):
    out = remax_model["inference"]
    assert set(out) == {
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
        common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY,
    }
    # Stride 4 of 65 is 17; class logits: 7 real classes + void.
    assert out[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape == [2, 17, 17, SLOTS]
    assert out[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY].shape == [
        2,
        SLOTS,
        NUM_THING_STUFF + 1,
    ]
    assert out[common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY].shape == [2, 17, 17, 64]


def test_training_outputs_follow_the_contract(remax_model):
    out = remax_model["training"]
    model = remax_model["model"]
    assert out[common.PRED_SEMANTIC_LOGITS_KEY].shape == [2, 17, 17, NUM_CLASSES]
    auxiliary = out[common.PRED_AUXILIARY_OUTPUTS]
    assert isinstance(auxiliary, tuple)
    assert len(auxiliary) == model.num_auxiliary_outputs == 3  # blocks [1, 1, 1]
    # Demo: 4 relaxed stages requested, 3 kMaX layers exist.
    assert model.num_relaxed_layers == 3
    key_sizes = []
    for prediction in auxiliary:
        assert prediction[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape == [
            2,
            17,
            17,
            SLOTS,
        ]
        assert prediction[common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY].shape == [
            2,
            17,
            17,
            64,
        ]
        assert prediction[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY].shape == [
            2,
            SLOTS,
            NUM_THING_STUFF + 1,
        ]
        assert prediction[common.PRED_REMAX_SEMANTIC_LOGITS_KEY].shape == [
            2,
            17,
            17,
            NUM_THING_STUFF,
        ]
        # ReMask (Eq. 1-2) in the training forward pass, with the config's
        # settings, on the layer's own m_pan, m_sem and p.
        expected = ReMask(activation="sigmoid")(
            [
                prediction[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY],
                prediction[common.PRED_REMAX_SEMANTIC_LOGITS_KEY],
                prediction[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY],
            ],
            training=True,
        )
        np.testing.assert_allclose(
            prediction[common.PRED_RELAXED_MASK_LOGITS_KEY].numpy(),
            expected.numpy(),
            rtol=1e-5,
            atol=1e-5,
        )
        key = prediction[common.PRED_KEY_FEATURE_KEY]
        assert key.shape[-1] == 128  # transformer_decoder_channels
        key_sizes.append(key.shape[1])
    # x_sem at the layers' strides 32, 16, 8.
    assert key_sizes == [3, 5, 9]


def test_training_only_layers_are_absent_from_the_inference_build(remax_model):
    model = remax_model["model"]
    assert remax_model["training_only_before"] == []
    after = model.training_only_variables
    assert after
    # The training call added variables without touching the inference ones.
    assert _signature(model.inference_variables) == remax_model["inference_signature"]
    names = {v.name for v in after}
    assert any("remax_semantic_head_2" in n for n in names)
    assert any("auxiliary_semantic" in n for n in names)


def test_only_the_first_relaxed_layers_get_semantic_logits(repo_root):
    model = build_model(
        _config(repo_root, overrides=["model_options.remax.num_relaxed_stages=2"])
    )
    auxiliary = model(_images(batch=1), training=True)[common.PRED_AUXILIARY_OUTPUTS]
    has = [common.PRED_REMAX_SEMANTIC_LOGITS_KEY in p for p in auxiliary]
    assert has == [True, True, False]
    relaxed = [common.PRED_RELAXED_MASK_LOGITS_KEY in p for p in auxiliary]
    assert relaxed == [True, True, False]
    assert all(common.PRED_KEY_FEATURE_KEY in p for p in auxiliary)


def test_remax_on_and_off_have_identical_inference_variables(repo_root, remax_model):
    tf_keras.backend.clear_session()
    kmax = build_model(_config(repo_root, name="shapes_kmax"))
    kmax(_images(), training=False)
    assert _signature(kmax.variables) == remax_model["inference_signature"]
    assert kmax.num_relaxed_layers == 0
    out = kmax(_images(), training=True)
    assert all(
        common.PRED_REMAX_SEMANTIC_LOGITS_KEY not in p
        for p in out[common.PRED_AUXILIARY_OUTPUTS]
    )


def test_inference_is_deterministic_and_drop_path_is_off(repo_root):
    model = build_model(
        _config(
            repo_root,
            overrides=[
                "model_options.max_deeplab.transformer_decoder_drop_path_keep_prob=0.5",
                "model_options.backbone.drop_path_keep_prob=0.5",
            ],
        )
    )
    images = _images(batch=2)
    model(images, training=False)
    # Residual branches start switched off (zero BN gamma), which would hide
    # drop path; switch them on.
    for variable in model.variables:
        if variable.name.endswith("gamma:0"):
            variable.assign(tf.ones_like(variable))
    first = model(images, training=False)
    second = model(images, training=False)
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), second[key].numpy())
    # Drop path is live in training: two training passes differ.
    tf.random.set_seed(1)
    a = model(images, training=True)[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY]
    tf.random.set_seed(2)
    b = model(images, training=True)[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY]
    assert not np.allclose(a.numpy(), b.numpy())


def test_keep_remax_at_inference_keeps_relaxed_outputs(repo_root):
    model = build_model(
        _config(repo_root, overrides=["model_options.remax.keep_at_inference=true"])
    )
    out = model(_images(batch=1), training=False)
    auxiliary = out[common.PRED_AUXILIARY_OUTPUTS]
    assert len(auxiliary) == model.num_relaxed_layers == 3
    assert all(common.PRED_REMAX_SEMANTIC_LOGITS_KEY in p for p in auxiliary)
    # ReMask is the identity at inference (paper Table 5).
    for p in auxiliary:
        np.testing.assert_array_equal(
            p[common.PRED_RELAXED_MASK_LOGITS_KEY].numpy(),
            p[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].numpy(),
        )
    assert common.PRED_SEMANTIC_LOGITS_KEY not in out
    assert not any("remax" in layer.name for layer in model.training_only_layers)


def test_checkpoint_items_restore_into_a_fresh_model(repo_root, remax_model, tmp_path):
    model = remax_model["model"]
    items = model.checkpoint_items
    assert list(items)[:3] == ["encoder", "pixel_decoder", "transformer_decoder"]
    for name in (
        common.CKPT_PIXEL_SPACE_HEAD,
        common.CKPT_TRANSFORMER_MASK_HEAD,
        common.CKPT_TRANSFORMER_CLASS_HEAD,
        common.CKPT_PIXEL_SPACE_FEATURE_BATCH_NORM,
        common.CKPT_PIXEL_SPACE_MASK_BATCH_NORM,
        common.CKPT_SEMANTIC_DECODER,
        common.CKPT_SEMANTIC_LAST_LAYER,
        f"{common.CKPT_REMAX_SEMANTIC_HEAD_PREFIX}0",
    ):
        assert name in items
    path = tf.train.Checkpoint(**items).save(str(tmp_path / "ckpt"))
    fresh = build_model(_config(repo_root))
    fresh(_images(), training=False)
    tf.train.Checkpoint(**fresh.checkpoint_items).read(path).expect_partial()
    expected = model(_images(), training=False)
    restored = fresh(_images(), training=False)
    for key in expected:
        np.testing.assert_allclose(restored[key], expected[key], rtol=1e-5, atol=1e-5)


def test_output_stride_2_without_semantic_decoder(repo_root):
    # DeepLab2's Cityscapes layout: a fifth decoder stage to stride 2 and the
    # auxiliary semantic head on the stride-32 feature.
    model = build_model(
        _config(
            repo_root,
            overrides=[
                "model_options.max_deeplab.pixel_decoder_output_stride=2",
                "model_options.max_deeplab.pixel_decoder_widths=[128,64,32,16,16]",
                "model_options.max_deeplab.pixel_decoder_num_blocks=[1,1,1,1,1]",
                "model_options.max_deeplab.use_auxiliary_semantic_decoder=false",
            ],
        )
    )
    out = model(_images(batch=1), training=True)
    assert out[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY].shape == [1, 33, 33, SLOTS]
    assert out[common.PRED_SEMANTIC_LOGITS_KEY].shape == [1, 3, 3, NUM_CLASSES]
    assert out[common.PRED_AUXILIARY_OUTPUTS][0][
        common.PRED_REMAX_SEMANTIC_LOGITS_KEY
    ].shape == [1, 33, 33, NUM_THING_STUFF]


def test_builder_rejects_contradictory_configs(repo_root):
    config = _config(
        repo_root,
        overrides=[
            "model_options.max_deeplab.auxiliary_semantic_head.output_channels=9"
        ],
    )
    with pytest.raises(ConfigError, match="num_classes = 8"):
        build_model(config)
    config = _config(repo_root)
    config.model_options.deeplab_v3.num_classes = 3
    with pytest.raises(ConfigError, match="max_deeplab"):
        build_model(config)
