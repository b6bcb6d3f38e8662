"""DeepLab2 checkpoints: name rules against DeepLab2's own variable names,
layout detection, value transforms and restores on tiny synthetic checkpoints.

``tests/testdata/deeplab2_names/*.txt`` list DeepLab2's checkpoint variables
(object path and shape), generated once from DeepLab2's unmodified code (see
the README there); a rule that misses or invents a name fails here without
DeepLab2. Output parity with DeepLab2's model is in
``test_deeplab2_checkpoints.py`` (needs ``DEEPLAB2_ROOT``).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf import convert_deeplab2
from remax_tf.config import load_config
from remax_tf.model import build_model
from remax_tf.model import deeplab2_mapping
from remax_tf.model.checkpoint_restore import CLASS_HEAD_PATTERNS
from remax_tf.model.checkpoint_restore import restore_items
from remax_tf.model.checkpoint_restore import restore_model_checkpoint
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.pixel_encoder.convnext import build_convnext
from remax_tf.model.pixel_encoder.weights import load_pretrained_weights
from remax_tf.model.transformer_decoder.kmax_decoder import KMaXTransformerDecoder

NAMES_DIR = os.path.join(os.path.dirname(__file__), "..", "testdata", "deeplab2_names")
ENV = {
    "REMAX_DATA_DIR": "/nonexistent",
    "EXPERIMENT_NAME": "e",
    "INIT_CHECKPOINT": "",
    "PRETRAINED_WEIGHTS": "",
    "TRAIN_SET": "/t",
    "VAL_SET": "/v",
}
CROP = 33


def _names(fixture):
    """DeepLab2 object path -> shape, from a committed name list."""
    result = {}
    with open(os.path.join(NAMES_DIR, fixture + ".txt")) as f:
        for line in f:
            path, shape = line.split()
            result[path] = (
                [] if shape == "scalar" else [int(d) for d in shape.split("x")]
            )
    return result


def _mapped_shapes(mapped):
    """DeepLab2 path -> the shape DeepLab2 stores for it (transforms undone)."""
    result = {}
    for entry in mapped:
        if entry.target is None:
            continue
        assert entry.target.path not in result, (
            f"two variables map to {entry.target.path}"
        )
        shape = entry.variable.shape.as_list()
        if entry.target.transform == "grouped_to_depthwise_kernel":
            shape = shape[:2] + [shape[3], shape[2]]
        elif entry.target.transform == "layer_scale_to_vector":
            shape = [1, 1, 1] + shape
        result[entry.target.path] = shape
    return result


def _check_complete(mapped, expected):
    ours = _mapped_shapes(mapped)
    assert sorted(set(expected) - set(ours))[:5] == []  # DeepLab2 names we miss
    assert sorted(set(ours) - set(expected))[:5] == []  # names DeepLab2 lacks
    conflicts = [p for p in expected if ours[p] != expected[p]]
    assert conflicts == []


@pytest.mark.parametrize(
    "config, overrides, fixture, num_remax_variables",
    [
        # COCO R50: pixel decoder to stride 4, transformer blocks (2, 2, 2), 128 slots.
        pytest.param(
            "configs/coco/kmax_r50.textproto",
            [],
            "coco_kmax_r50",
            0,
            marks=pytest.mark.slow,  # a full-size model
        ),
        # Cityscapes R50: 5-stage pixel decoder (stride 2), 256 slots; ReMaX on.
        pytest.param(
            "configs/cityscapes/remax_r50.textproto",
            [],
            "cityscapes_kmax_r50",
            None,
            marks=pytest.mark.slow,
        ),
    ],
)
def test_full_model_mapping_matches_deeplab2_names(
    repo_root, config, overrides, fixture, num_remax_variables
):
    tf_keras.backend.clear_session()
    model = build_model(load_config(str(repo_root / config), overrides, environ=ENV))
    images = tf.zeros([1, CROP, CROP, 3])
    model(images, training=False)
    model(images, training=True)
    mapped = deeplab2_mapping.map_items(model.checkpoint_items)
    expected = _names(fixture)
    _check_complete(mapped, expected)
    unmapped = [m for m in mapped if m.target is None]
    # Only ReMaX's semantic heads have no DeepLab2 counterpart.
    assert all(
        m.item.startswith(common.CKPT_REMAX_SEMANTIC_HEAD_PREFIX) for m in unmapped
    )
    if num_remax_variables is not None:
        assert len(unmapped) == num_remax_variables
    assert len(mapped) - len(unmapped) == len(expected)


@pytest.mark.parametrize(
    "backbone, fixture",
    [
        ("kmax_resnet50", "coco_kmax_r50"),
        ("kmax_axial_resnet50", "coco_kmax_axial_r50"),
        ("kmax_convnext_tiny", "coco_kmax_convnext_tiny"),
        ("kmax_mobilenet_v3_small", "mobilenet_v3_small_imagenet"),
        ("kmax_mobilenet_v3_large", "mobilenet_v3_large_imagenet"),
    ],
)
def test_encoder_mapping_matches_deeplab2_names(backbone, fixture):
    tf_keras.backend.clear_session()
    encoder = build_pixel_encoder(backbone)
    encoder(tf.zeros([1, CROP, CROP, 3]), training=False)
    mapped = deeplab2_mapping.map_items({common.CKPT_ENCODER: encoder})
    expected = {
        p: s
        for p, s in _names(fixture).items()
        if p.startswith(common.CKPT_ENCODER + "/")
    }
    _check_complete(mapped, expected)


def test_transformer_decoder_flattens_stages_in_order():
    """DeepLab2's ``_kmax_decoder/k``: k counts our (stage, block) pairs in order."""
    tf_keras.backend.clear_session()
    decoder = KMaXTransformerDecoder(
        4,
        num_blocks=[1, 2, 1],
        strides=[32, 16, 8],
        channels=16,
        num_heads=2,
        ffn_channels=32,
        prediction_head_config={
            "num_classes_with_void": 3,
            "pixel_head_channels": 8,
            "embedding_channels": 8,
        },
    )
    features = [tf.zeros([1, s, s, c]) for s, c in ((2, 16), (4, 16), (8, 16))]
    decoder(features, training=False)
    mapped = deeplab2_mapping.map_items({common.CKPT_TRANSFORMER_DECODER: decoder})
    pairs = set()
    for m in mapped:
        parts = m.ours.split("/")
        if parts[1] == "_layers_per_stage":
            k = m.target.path.split("/")[2]
            pairs.add((parts[2], parts[3], k))
    assert sorted(pairs) == [
        ("0", "0", "0"),
        ("1", "0", "1"),
        ("1", "1", "2"),
        ("2", "0", "3"),
    ]


def test_value_transforms():
    grouped = np.arange(7 * 7 * 1 * 3).reshape(7, 7, 1, 3)
    depthwise = deeplab2_mapping.TRANSFORMS["grouped_to_depthwise_kernel"](grouped)
    assert depthwise.shape == (7, 7, 3, 1)
    np.testing.assert_array_equal(depthwise[:, :, 2, 0], grouped[:, :, 0, 2])
    scale = deeplab2_mapping.TRANSFORMS["layer_scale_to_vector"](
        np.array([[[[1.0, 2.0, 3.0]]]])
    )
    np.testing.assert_array_equal(scale, [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------
# Synthetic DeepLab2 checkpoints: a tree of trackables with DeepLab2's paths.
def _tree(values):
    """{relative path: array} -> an AutoTrackable tree holding tf.Variables."""
    root = tf.Module()
    for path, value in values.items():
        node = root
        *parents, leaf = path.split("/")
        for part in parents:
            child = getattr(node, part, None)
            if child is None:
                child = tf.Module()
                setattr(node, part, child)
            node = child
        setattr(node, leaf, tf.Variable(value))
    return root


def _deeplab2_values(mapped, seed=0):
    """DeepLab2 path -> a random value in DeepLab2's shape (and our expected value)."""
    rng = np.random.RandomState(seed)
    stored, expected = {}, {}
    for entry in mapped:
        if entry.target is None:
            continue
        ours = rng.standard_normal(entry.variable.shape.as_list()).astype(np.float32)
        value = ours
        if entry.target.transform == "grouped_to_depthwise_kernel":
            value = np.transpose(ours, (0, 1, 3, 2))
        elif entry.target.transform == "layer_scale_to_vector":
            value = ours.reshape(1, 1, 1, -1)
        stored[entry.target.path] = value
        expected[id(entry.variable)] = ours
    return stored, expected


def _write(tmp_path, layout, stored):
    """Writes ``stored`` (model-relative DeepLab2 paths) in ``layout``."""
    prefix = str(tmp_path / layout / "ckpt")
    if layout == deeplab2_mapping.LAYOUT_MODEL:
        children = {
            name: getattr(_tree(stored), name)
            for name in {p.split("/")[0] for p in stored}
        }
        # As DeepLab2's trainer: the step and an optimizer beside the items.
        children["global_step"] = tf.Variable(1000, dtype=tf.int64)
        children["optimizer"] = tf.Module()
        children["optimizer"].iterations = tf.Variable(1000, dtype=tf.int64)
        tf.train.Checkpoint(**children).write(prefix)
        return prefix
    encoder = {
        p.split("/", 1)[1]: v for p, v in stored.items() if p.startswith("encoder/")
    }
    tree = _tree(encoder)
    if layout == deeplab2_mapping.LAYOUT_ENCODER:
        tf.train.Checkpoint(encoder=tree).write(prefix)
    elif layout == deeplab2_mapping.LAYOUT_MODEL_GARDEN:
        backbone = tf.Module()
        backbone._encoder = tree
        tf.train.Checkpoint(backbone=backbone).write(prefix)
    else:  # Keras weights: the encoder is the root.
        top = {p.split("/")[0] for p in encoder}
        tf.train.Checkpoint(**{name: getattr(tree, name) for name in top}).write(prefix)
    return prefix


def _tiny_convnext():
    encoder = build_convnext([1, 2, 1, 1], [8, 16, 24, 32], name="kmax_convnext_tiny")
    encoder(tf.zeros([1, CROP, CROP, 3]))
    return encoder


@pytest.mark.parametrize(
    "layout",
    [
        deeplab2_mapping.LAYOUT_ENCODER,
        deeplab2_mapping.LAYOUT_MODEL_GARDEN,
        deeplab2_mapping.LAYOUT_KERAS_WEIGHTS,
    ],
)
def test_pretrained_weights_read_deeplab2_layouts_with_transforms(tmp_path, layout):
    tf_keras.backend.clear_session()
    encoder = _tiny_convnext()
    stored, expected = _deeplab2_values(
        deeplab2_mapping.map_items({common.CKPT_ENCODER: encoder})
    )
    prefix = _write(tmp_path, layout, {f"{p}": v for p, v in stored.items()})
    assert deeplab2_mapping.detect_layout(prefix) == layout
    report = load_pretrained_weights(encoder, prefix)
    assert report.layout == layout
    assert len(report.restored) == len(encoder.weights)
    assert report.missing == () and report.unused == ()
    for variable in encoder.weights:
        np.testing.assert_array_equal(variable.numpy(), expected[id(variable)])


def test_remax_checkpoint_is_not_a_deeplab2_layout(tmp_path):
    tf_keras.backend.clear_session()
    encoder = build_pixel_encoder("kmax_mobilenet_v3_small")
    prefix = tf.train.Checkpoint(encoder=encoder).write(str(tmp_path / "ours"))
    assert deeplab2_mapping.detect_layout(prefix) is None


def test_encoder_of_another_backbone_is_refused(tmp_path):
    tf_keras.backend.clear_session()
    stored, _ = _deeplab2_values(
        deeplab2_mapping.map_items({common.CKPT_ENCODER: _tiny_convnext()})
    )
    prefix = _write(tmp_path, deeplab2_mapping.LAYOUT_ENCODER, stored)
    encoder = build_pixel_encoder("kmax_mobilenet_v3_small")
    with pytest.raises(ValueError, match="holds no variable"):
        load_pretrained_weights(encoder, prefix)


def _demo_model(repo_root, config, *overrides):
    tf_keras.backend.clear_session()
    model = build_model(
        load_config(str(repo_root / config), overrides, environ=ENV, validate=False)
    )
    images = tf.zeros([1, CROP, CROP, 3])
    model(images, training=False)
    model(images, training=True)
    return model


def test_deeplab2_model_checkpoint_fine_tunes_with_remax_and_other_classes(
    repo_root, tmp_path
):
    """A DeepLab2 kMaX checkpoint (trainer layout, with step and optimizer)
    into a ReMaX model of another class set, as ``initial_checkpoint`` with
    ``restore_semantic_last_layer_from_initial_checkpoint: false``: the ReMaX
    heads and the class heads stay at init, everything else is restored."""
    source = _demo_model(repo_root, "configs/demo/shapes_kmax.textproto")
    stored, expected = _deeplab2_values(
        deeplab2_mapping.map_items(source.checkpoint_items)
    )
    prefix = _write(tmp_path, deeplab2_mapping.LAYOUT_MODEL, stored)
    assert deeplab2_mapping.detect_layout(prefix) == deeplab2_mapping.LAYOUT_MODEL

    model = _demo_model(
        repo_root,
        "configs/demo/shapes_remax.textproto",
        "train_dataset_options.dataset=shapes_panoptic_v2",
        "model_options.max_deeplab.auxiliary_semantic_head.output_channels=24",
    )
    report = restore_model_checkpoint(model, prefix, exclude=CLASS_HEAD_PATTERNS)
    assert report.layout == deeplab2_mapping.LAYOUT_MODEL
    assert {"global_step", "optimizer/iterations"} <= set(report.skipped)
    remax = {
        v.name
        for name, item in model.checkpoint_items.items()
        if name.startswith(common.CKPT_REMAX_SEMANTIC_HEAD_PREFIX)
        for v in item.weights
    }
    assert remax and set(report.missing) == remax
    # At least the final and the 3 auxiliary class heads (kernel + bias each).
    assert len(report.excluded) >= 2 * (1 + 3)
    assert all("class_head" in n or "semantic" in n for n in report.excluded)
    assert report.unused == ()
    restored = set(report.restored)
    assert len(restored) + len(report.excluded) + len(remax) == len(model.weights)
    for entry in deeplab2_mapping.map_items(model.checkpoint_items):
        if entry.variable.name in restored:  # MobileNetV3: no value transforms
            np.testing.assert_array_equal(
                entry.variable.numpy(), stored[entry.target.path]
            )
    # And the model trains from there.
    with tf.GradientTape() as tape:
        outputs = model(tf.zeros([1, CROP, CROP, 3]), training=True)
        loss = tf.reduce_sum(outputs[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY])
    grads = tape.gradient(loss, model.trainable_variables)
    assert any(g is not None for g in grads)


def test_convert_deeplab2_cli_writes_checkpoint_and_report(
    repo_root, tmp_path, monkeypatch, capsys
):

    config = str(repo_root / "configs/demo/shapes_kmax.textproto")
    source = _demo_model(repo_root, "configs/demo/shapes_kmax.textproto")
    stored, _ = _deeplab2_values(deeplab2_mapping.map_items(source.checkpoint_items))
    prefix = _write(tmp_path, deeplab2_mapping.LAYOUT_MODEL, stored)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "converted"
    args = ["--config_file", config, "--deeplab2_checkpoint", prefix]
    assert convert_deeplab2.main(args + ["--output_dir", str(out)]) == 0
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["ok"] and report["layout"] == deeplab2_mapping.LAYOUT_MODEL
    assert report["restored"] == len(source.weights)
    assert "global_step" in report["skipped_examples"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    # remax_tf's own layout now: restored by object graph, not by DeepLab2 rules.
    assert deeplab2_mapping.detect_layout(str(out / "ckpt-0")) is None
    assert restore_items(source.checkpoint_items, str(out)).layout == "items"

    # A DeepLab2 weight used at inference that nothing takes: exit status 1.
    stored["transformer_decoder/_kmax_decoder/99/_block1_transformer/x"] = np.zeros(1)
    bad = _write(tmp_path / "bad", deeplab2_mapping.LAYOUT_MODEL, stored)
    args = ["--config_file", config, "--deeplab2_checkpoint", bad]
    assert convert_deeplab2.main(args + ["--output_dir", str(tmp_path / "o2")]) == 1
    assert "_kmax_decoder/99" in capsys.readouterr().err
    # Only the report: nothing that would load as a whole checkpoint.
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == [
        "conversion_report.json"
    ]
