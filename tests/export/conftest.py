"""One export of the demo ReMaX model at crop 65, shared by the export tests.

The model's weights are its initial ones except two, scaled so that the
outputs are not trivial: the class head (confident slots, so segments pass
the thresholds) and the mask-logit BN gamma (peaked masks). The model is
built for training too, so that training-only variables exist and the tests
can check that nothing of them is exported.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config import load_config
from remax_tf.config.small_crop import crop_overrides
from remax_tf.data import shapes
from remax_tf.export import export_from_config
from remax_tf.model import build_model

CONFIG = "configs/demo/shapes_remax.textproto"
CROP = 65
CLASS_HEAD_SCALE = 300.0
MASK_BN_GAMMA = 20.0
NUM_CALIBRATION_IMAGES = 4


def demo_config(repo_root, *overrides, crop=CROP):
    sizes = crop_overrides(crop)
    return load_config(
        str(repo_root / CONFIG),
        sizes + list(overrides),
        environ={"REMAX_DATA_DIR": "/nonexistent"},
        validate=False,
    )


def shapes_images(count, split="val", size=CROP):
    config = shapes.ShapesConfig(size=size)
    return [
        shapes.render(shapes.image_rng(0, split, index), config)[0]
        for index in range(count)
    ]


@pytest.fixture(scope="session")
def demo_model(repo_root):
    config = demo_config(repo_root)
    model = build_model(config)
    dummy = tf.zeros([1, CROP, CROP, 3])
    model(dummy, training=False)
    model(dummy, training=True)
    items = model.checkpoint_items
    kernel = items[common.CKPT_TRANSFORMER_CLASS_HEAD].weights[0]
    kernel.assign(kernel * CLASS_HEAD_SCALE)
    gamma = items[common.CKPT_PIXEL_SPACE_MASK_BATCH_NORM].gamma
    gamma.assign(tf.fill(gamma.shape, MASK_BN_GAMMA))
    return config, model


@pytest.fixture(scope="session")
def demo_export(demo_model, tmp_path_factory):
    """SavedModel, fp32 TFLite and int8 TFLite (+ postprocess) of the model."""
    config, model = demo_model
    output_dir = tmp_path_factory.mktemp("export")
    calibration = shapes_images(NUM_CALIBRATION_IMAGES, split="train")
    result = export_from_config(
        config,
        model,
        str(output_dir),
        formats=("saved_model", "tflite"),
        quantize=("none", "int8"),
        representative_images=lambda: iter(calibration),
        calibration_steps=NUM_CALIBRATION_IMAGES,
    )
    return result


@pytest.fixture(scope="session")
def test_images():
    """A square image at the crop size, a larger one and a non-square one."""
    small = shapes_images(1)[0]
    large = shapes_images(1, size=129)[0]
    return {"crop": small, "large": large, "wide": large[20:70, 5:125]}


@pytest.fixture(scope="session")
def keras_reference(demo_model, test_images):
    """The evaluation path, eagerly: preprocessing, model, post-processing,
    undo, with the functions the evaluator uses."""
    from remax_tf.data import preprocessing
    from remax_tf.export.saved_model import eval_preprocess_config
    from remax_tf.export.saved_model import export_descriptor
    from remax_tf.postprocess import build_post_processor
    from remax_tf.postprocess import undo_preprocessing

    config, model = demo_model
    descriptor = export_descriptor(config)
    preprocess = eval_preprocess_config(config, descriptor)
    post = build_post_processor(config.evaluator_options, descriptor, (CROP, CROP))
    results = {}
    for name, image in test_images.items():
        padded, _, resized = preprocessing.preprocess_for_eval(
            image, None, preprocess, label_pad_value=0
        )
        raw = model(padded[None], training=False)
        maps = undo_preprocessing(
            post(raw), tf.shape(resized)[:2], tf.constant(image.shape[:2])
        )
        result = {key: np.asarray(value[0]) for key, value in maps.items()}
        for key in (
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
        ):
            result[key] = raw[key][0].numpy()
        results[name] = result
    return results


@pytest.fixture(scope="session")
def run_in_fresh_python():
    """``run(script, model_path, arrays, directory) -> (info, outputs)``:
    ``python -c script MODEL IN.npz OUT.npz`` in a fresh interpreter (so the
    export is read without remax_tf), ``arrays`` saved as ``IN.npz``; the
    script prints one JSON line last (``info``) and saves ``OUT.npz``."""

    def run(script, model_path, arrays, directory):
        np.savez(directory / "images.npz", **arrays)
        completed = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(model_path),
                str(directory / "images.npz"),
                str(directory / "outputs.npz"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        info = json.loads(completed.stdout.strip().splitlines()[-1])
        return info, dict(np.load(directory / "outputs.npz"))

    return run
