"""Partial restore of a whole model's checkpoint items (initial_checkpoint).

The checkpoints are written here from the demo ReMaX model (tiny input 65),
with ``global_step`` and an AdamW optimizer beside the items, as a training
run writes its ``ckpt-N``.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.config import load_config
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.model import build_model
from remax_tf.model.checkpoint_restore import CLASS_HEAD_PATTERNS
from remax_tf.model.checkpoint_restore import restore_items
from remax_tf.model.heads.remax_semantic_head import ReMaXSemanticHead

CONFIG = "configs/demo/shapes_remax.textproto"
CROP = 65
# shapes_remax: 3 kMaX layers, 3 relaxed ones (ReMaX heads).
NUM_KMAX_LAYERS = 3
NUM_REMAX_HEADS = 3


def _config(repo_root, *overrides):
    return load_config(
        str(repo_root / CONFIG),
        overrides,
        environ={"REMAX_DATA_DIR": "/nonexistent"},
        validate=False,
    )


def _built(config, descriptor=None, training=True):
    model = build_model(config, descriptor)
    dummy = tf.zeros([1, CROP, CROP, 3])
    model(dummy, training=False)
    if training:
        model(dummy, training=True)
    return model


@pytest.fixture(scope="module")
def images():
    return tf.random.stateless_uniform([1, CROP, CROP, 3], [3, 4], 0.0, 255.0)


@pytest.fixture(scope="module")
def trained(repo_root, tmp_path_factory, images):
    """A model with non-initial weights saved as a training checkpoint."""
    model = _built(_config(repo_root))
    rng = np.random.default_rng(0)
    for variable in model.variables:
        noise = rng.uniform(0.5, 1.0, variable.shape).astype(np.float32)
        variable.assign(variable * 0.9 + noise * 0.1)
    optimizer = tf_keras.optimizers.AdamW()
    optimizer.build(model.trainable_variables)
    directory = tmp_path_factory.mktemp("run")
    checkpoint = tf.train.Checkpoint(
        global_step=tf.Variable(7, dtype=tf.int64),
        optimizer=optimizer,
        **model.checkpoint_items,
    )
    checkpoint.save(str(directory / "ckpt"))
    return model, model(images, training=False), directory


def test_restore_everything(repo_root, trained, images):
    model, expected, directory = trained
    fresh = _built(_config(repo_root))

    report = restore_items(fresh.checkpoint_items, str(directory))
    assert report.checkpoint.endswith("ckpt-1")
    assert len(report.restored) == len(fresh.variables)
    assert report.missing == () and report.unused == () and report.excluded == ()
    assert report.absent_items == () and report.unbuilt_items == ()
    # Training-only layers too (ReMaX semantic heads, auxiliary semantic head).
    for got, want in zip(fresh.variables, model.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    outputs = fresh(images, training=False)
    for key, value in expected.items():
        np.testing.assert_array_equal(outputs[key], value)


def test_other_class_count_needs_the_class_heads_excluded(repo_root, trained, images):
    model, expected, directory = trained
    shapes = get_dataset_descriptor("shapes_panoptic")
    # Semantic ids 0..5: things 1..4, stuff 5 (two stuff classes fewer).
    fewer = dataclasses.replace(shapes, num_classes=6)
    config = _config(
        repo_root, "model_options.max_deeplab.auxiliary_semantic_head.output_channels=6"
    )
    other = _built(config, fewer)
    before = [v.numpy() for v in other.variables]

    with pytest.raises(ValueError) as error:
        restore_items(other.checkpoint_items, str(directory))
    message = str(error.value)
    assert "transformer_class_head" in message
    assert "restore_semantic_last_layer_from_initial_checkpoint" in message
    for value, variable in zip(before, other.variables):
        np.testing.assert_array_equal(value, variable.numpy())

    report = restore_items(
        other.checkpoint_items, str(directory), exclude=CLASS_HEAD_PATTERNS
    )
    # Kernel and bias of: the final class head, each kMaX layer's auxiliary
    # class head, kMaX's semantic last layer, each ReMaX head's last conv.
    assert len(report.excluded) == 2 * (1 + NUM_KMAX_LAYERS + 1 + NUM_REMAX_HEADS)
    assert len(report.restored) + len(report.excluded) == len(other.variables)
    assert report.missing == () and report.unused == ()
    # Everything but the class logits is the trained model's.
    outputs = other(images, training=False)
    for key in (
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
        common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY,
    ):
        np.testing.assert_array_equal(outputs[key], expected[key])
    assert outputs[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY].shape[-1] == 6


def test_checkpoint_of_another_architecture_is_rejected(repo_root, trained):
    _, _, directory = trained
    config = _config(
        repo_root, "model_options.max_deeplab.pixel_decoder_widths=[64, 32, 16, 8]"
    )
    other = _built(config, training=False)
    before = [v.numpy() for v in other.variables]
    with pytest.raises(ValueError, match="differ in shape") as error:
        restore_items(other.checkpoint_items, str(directory))
    assert "pixel_decoder/" in str(error.value)
    assert "Nothing was restored" in str(error.value)
    for value, variable in zip(before, other.variables):
        np.testing.assert_array_equal(value, variable.numpy())


def test_checkpoint_without_model_items_is_rejected(trained, tmp_path):
    model, _, _ = trained
    prefix = tf.train.Checkpoint(step=tf.Variable(3)).write(str(tmp_path / "c"))
    with pytest.raises(ValueError, match="holds none of the model's built"):
        restore_items(model.checkpoint_items, prefix)


def test_unbuilt_and_absent_items_are_reported(trained, tmp_path):
    model, _, directory = trained
    unbuilt = ReMaXSemanticHead(7, channels=8, atrous_rates=[1, 2, 3], name="unbuilt")
    extra = tf.Variable([1.0, 2.0])
    report = restore_items(
        {
            common.CKPT_ENCODER: model.pixel_encoder,
            "remax_semantic_head_0": unbuilt,
            "not_in_checkpoint": extra,
        },
        str(directory),
    )
    assert report.unbuilt_items == ("remax_semantic_head_0",)
    assert report.absent_items == ("not_in_checkpoint",)
    assert report.missing == (extra.name,)
    assert len(report.restored) == len(model.pixel_encoder.weights)
    assert "unbuilt items skipped" in report.summary()


def test_missing_checkpoint(trained, tmp_path):
    model, _, _ = trained
    with pytest.raises(FileNotFoundError, match="initial_checkpoint"):
        restore_items(model.checkpoint_items, str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        restore_items(model.checkpoint_items, str(tmp_path))
