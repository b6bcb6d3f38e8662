"""Tests of build_pixel_encoder (registry lookup) and pretrained-weight loading."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config.backbones import KMAX_BACKBONE_NAMES
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.pixel_encoder import registry
from remax_tf.model.pixel_encoder.weights import load_pretrained_weights

NAME = "kmax_mobilenet_v3_small"


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as error:
        build_pixel_encoder("resnet50")  # DeepLab2 kMaX names carry 'kmax_'
    message = str(error.value)
    assert "'resnet50'" in message
    for name in registry.known_backbones():
        assert name in message


@pytest.mark.parametrize("name", sorted(registry.KMAX_BACKBONES))
def test_registry_entries_resolve(name):
    module_name, function_name = registry.KMAX_BACKBONES[name].split(":")
    assert callable(getattr(importlib.import_module(module_name), function_name))


@pytest.fixture(scope="module")
def images():
    return tf.random.stateless_uniform([1, 65, 65, 3], seed=[5, 6], minval=-1, maxval=1)


def _perturbed_encoder():
    """An encoder whose weights (BN statistics included) differ from init."""
    model = build_pixel_encoder(NAME)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        noise = rng.uniform(0.5, 1.0, variable.shape).astype(np.float32)
        variable.assign(variable * 0.9 + noise * 0.1)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory, images):
    """A trained-looking encoder saved in both supported layouts."""
    model = _perturbed_encoder()
    directory = tmp_path_factory.mktemp("ckpt")
    item = tf.train.Checkpoint(
        **{common.CKPT_ENCODER: model, "other": tf.Variable(1.0)}
    ).write(str(directory / "item" / "ckpt"))
    root = tf.train.Checkpoint(model).write(str(directory / "root" / "ckpt"))
    return model, model(images, training=False), item, root


@pytest.mark.parametrize("layout", ["encoder_item", "encoder_root"])
def test_pretrained_weights_round_trip(saved, images, layout):
    model, expected, item, root = saved
    prefix = item if layout == "encoder_item" else root
    fresh = build_pixel_encoder(NAME)
    before = fresh(images, training=False)
    assert not np.allclose(before["stage5"], expected["stage5"])

    report = load_pretrained_weights(fresh, prefix)
    assert report.layout == layout
    assert len(report.restored) == len(fresh.weights)
    assert report.missing == () and report.unused == ()
    got = fresh(images, training=False)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_build_with_pretrained_weights(saved, images):
    _, expected, item, _ = saved
    loaded = build_pixel_encoder(NAME, pretrained_weights=item)
    np.testing.assert_array_equal(loaded(images)["stage3"], expected["stage3"])


def test_checkpoint_of_another_backbone_is_rejected(saved):
    _, _, item, _ = saved
    large = build_pixel_encoder("kmax_mobilenet_v3_large")
    before = [v.numpy() for v in large.weights]
    with pytest.raises(ValueError, match="differ in shape"):
        load_pretrained_weights(large, item)
    # Nothing was restored.
    for value, variable in zip(before, large.weights):
        np.testing.assert_array_equal(value, variable.numpy())


def test_checkpoint_without_encoder_is_rejected(tmp_path):
    prefix = tf.train.Checkpoint(step=tf.Variable(3)).write(str(tmp_path / "c"))
    with pytest.raises(ValueError, match="holds no variable"):
        load_pretrained_weights(build_pixel_encoder(NAME), prefix)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a TF2 checkpoint"):
        build_pixel_encoder(NAME, pretrained_weights=str(tmp_path / "nothing"))


def test_partial_checkpoint_report(tmp_path):
    model = build_pixel_encoder(NAME)
    stem_kernel = model.get_layer("block0").kernel
    value = np.full(stem_kernel.shape, 0.25, np.float32)
    # Object-graph path of the stem kernel in a functional model, plus a
    # variable the encoder does not have.
    stem = tf.train.Checkpoint(kernel=tf.Variable(value))
    encoder = tf.train.Checkpoint(bogus=tf.Variable([1.0, 2.0]))
    setattr(encoder, "layer_with_weights-0", stem)
    prefix = tf.train.Checkpoint(**{common.CKPT_ENCODER: encoder}).write(
        str(tmp_path / "partial")
    )

    report = load_pretrained_weights(model, prefix)
    assert report.restored == (stem_kernel.name,)
    assert len(report.missing) == len(model.weights) - 1
    assert report.unused == ("encoder/bogus",)
    np.testing.assert_array_equal(stem_kernel.numpy(), value)
    assert "restored 1 variables" in report.summary()


def test_unknown_drop_path_schedule():
    with pytest.raises(ValueError, match="schedule 'cosine'"):
        build_pixel_encoder(NAME, drop_path_schedule="cosine")


def test_registry_builds_exactly_the_names_the_config_accepts():
    assert sorted(registry.KMAX_BACKBONES) == sorted(KMAX_BACKBONE_NAMES)
