"""DeepLab2's own models, saved as its trainer saves them, converted and compared.

Needs ``DEEPLAB2_ROOT``: the ``deeplab2`` package folder of a
google-research/deeplab2 checkout with its protos compiled (its parent goes on
``PYTHONPATH``). DeepLab2's model runs in a subprocess with
``TF_USE_LEGACY_KERAS=1`` at crop 65: it builds the model, takes one Adam step
(so the checkpoint holds optimizer slots), writes ``tf.train.Checkpoint(
global_step, optimizer, **model.checkpoint_items)`` (an ImageNet backbone:
``tf.train.Checkpoint(encoder=...)``) and its inference outputs. Here the
checkpoint is converted with :mod:`remax_tf.convert_deeplab2`, restored into
our model, and the outputs compared: bitwise for R50, Axial-R50 and
MobileNetV3, within 1e-5 for ConvNeXt (``docs/models.md``).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf import convert_deeplab2
from remax_tf.config import load_config
from remax_tf.model import build_model
from remax_tf.model.checkpoint_restore import restore_model_checkpoint
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.pixel_encoder.weights import load_pretrained_weights

DEEPLAB2_ROOT = os.environ.get("DEEPLAB2_ROOT")
pytestmark = pytest.mark.skipif(
    not DEEPLAB2_ROOT,
    reason="set DEEPLAB2_ROOT to a google-research/deeplab2 checkout (protos compiled) "
    "to compare with DeepLab2's own models (minutes each)",
)
CROP = 65
ENV = {
    "EXPERIMENT_NAME": "e",
    "INIT_CHECKPOINT": "",
    "PRETRAINED_WEIGHTS": "",
    "TRAIN_SET": "/t",
    "VAL_SET": "/v",
}
OUTPUT_KEYS = (
    common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
    common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
    common.PRED_PIXEL_SPACE_NORMALIZED_FEATURE_KEY,
)

# Runs in DeepLab2's environment; argv: config path or small/large, prefix.
_DEEPLAB2_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    from google.protobuf import text_format
    from deeplab2 import config_pb2
    from deeplab2.data import dataset
    from deeplab2.model import kmax_deeplab
    from deeplab2.model.encoder import mobilenet

    what, prefix, crop = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tf.random.set_seed(0)
    if what in ("small", "large"):
        fn = mobilenet.MobileNetV3Small if what == "small" else mobilenet.MobileNetV3Large
        encoder = fn()
        x = np.random.RandomState(0).uniform(-1, 1, [1, crop, crop, 3]).astype(np.float32)
        outputs = encoder(tf.constant(x), training=False)
        tf.train.Checkpoint(encoder=encoder).write(prefix)
    else:
        text = open(what).read()
        for key in ("EXPERIMENT_NAME", "INIT_CHECKPOINT", "TRAIN_SET", "VAL_SET",
                    "PRETRAINED_WEIGHTS"):
            text = text.replace("${%s}" % key, "")
        config = text_format.Parse(text, config_pb2.ExperimentOptions())
        config.model_options.backbone.ClearField("pretrained_weights")
        del config.train_dataset_options.crop_size[:]
        config.train_dataset_options.crop_size.extend([crop, crop])
        descriptor = dataset.MAP_NAME_TO_DATASET_INFO[config.train_dataset_options.dataset]
        model = kmax_deeplab.KMaXDeepLab(config, descriptor)
        x = np.random.RandomState(0).uniform(0, 255, [1, crop, crop, 3]).astype(np.float32)
        with tf.GradientTape() as tape:
            out = model(tf.constant(x), training=True)
            loss = tf.add_n([tf.reduce_sum(v) for v in out.values()
                             if isinstance(v, tf.Tensor)])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer = tf.keras.optimizers.Adam(1e-9)
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
        step = tf.Variable(1, dtype=tf.int64)
        tf.train.Checkpoint(global_step=step, optimizer=optimizer,
                            **model.checkpoint_items).write(prefix)
        outputs = model(tf.constant(x), training=False, post_processing=False)
    arrays = {k: v.numpy() for k, v in outputs.items() if isinstance(v, tf.Tensor)}
    np.savez(prefix + "_outputs.npz", input=x, **arrays)
    """
)


def _run_deeplab2(tmp_path, what):
    prefix = str(tmp_path / "deeplab2" / "ckpt")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.abspath(DEEPLAB2_ROOT)), env.get("PYTHONPATH", "")]
    )
    subprocess.run(
        [sys.executable, "-c", _DEEPLAB2_SCRIPT, what, prefix, str(CROP)],
        env=env,
        check=True,
    )
    return prefix, np.load(prefix + "_outputs.npz")


def _assert_close(ours, reference, bitwise):
    if bitwise:
        np.testing.assert_array_equal(ours, reference)
    else:
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "config, bitwise",
    [
        ("coco/kmax_deeplab/kmax_meta_r50_os32.textproto", True),
        ("coco/kmax_deeplab/kmax_meta_axial_r50_os32.textproto", True),
        ("coco/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto", False),
    ],
)
def test_deeplab2_kmax_checkpoint_converts_to_the_same_outputs(
    tmp_path, monkeypatch, config, bitwise
):
    path = os.path.join(DEEPLAB2_ROOT, "configs", config)
    prefix, reference = _run_deeplab2(tmp_path, path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    converted = tmp_path / "converted"
    report = convert_deeplab2.convert(path, prefix, str(converted))
    assert report["ok"], report["inference_unmatched"]
    assert report["deeplab2_unused"] == []
    assert report["skipped_non_model"] > 0  # optimizer slots and global_step

    tf_keras.backend.clear_session()
    model = build_model(load_config(path, environ=ENV))
    images = tf.constant(reference["input"])
    model(images, training=False)
    model(images, training=True)
    assert restore_model_checkpoint(model, str(converted)).missing == ()
    outputs = model(images, training=False)
    for key in OUTPUT_KEYS:
        _assert_close(outputs[key].numpy(), reference[key], bitwise)
    # The auxiliary semantic head (DeepLab2 computes it at inference too).
    endpoints = model.pixel_encoder(images / 127.5 - 1.0, training=False)
    semantic = model._auxiliary_semantic_head(endpoints, training=False)
    _assert_close(semantic.numpy(), reference[common.PRED_SEMANTIC_LOGITS_KEY], bitwise)


@pytest.mark.parametrize("size", ["small", "large"])
def test_deeplab2_mobilenet_v3_imagenet_checkpoint_gives_the_same_endpoints(
    tmp_path, size
):
    prefix, reference = _run_deeplab2(tmp_path, size)
    tf_keras.backend.clear_session()
    encoder = build_pixel_encoder(f"kmax_mobilenet_v3_{size}")
    images = tf.constant(reference["input"])
    encoder(images, training=False)
    report = load_pretrained_weights(encoder, prefix)
    assert report.layout == "deeplab2_encoder"
    assert report.missing == () and report.unused == ()
    outputs = encoder(images, training=False)
    for key in reference.files:
        if key != "input":
            np.testing.assert_array_equal(outputs[key].numpy(), reference[key])
