"""build_model on real configs: exact DeepLab2 parameter counts.

Reference numbers were measured by building DeepLab2's own kMaX models
(google-research/deeplab2, unmodified, TF 2.20 / tf_keras 2.20) from the same
configs at a 65x65 crop: trainable parameters excluding the auxiliary
semantic branch ("inference"), and of that branch ("training-only"). Counts do
not depend on the crop. The R50 breakdown is also in
tests/testdata/reference/deeplab2_kmax_r50_params.json (checked below).
"""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.config import load_config
from remax_tf.model import build_model
from remax_tf.model import builder

CROP = 65
DEEPLAB2_ENV = {
    "EXPERIMENT_NAME": "e",
    "INIT_CHECKPOINT": "",
    "TRAIN_SET": "/t",
    "VAL_SET": "/v",
    "PRETRAINED_WEIGHTS": "",
}
PROJECT_ENV = dict(DEEPLAB2_ENV, REMAX_DATA_DIR="/tmp/unused")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (inference, training-only) trainable parameters of DeepLab2's models.
DEEPLAB2_COUNTS = {
    "ade20k/kmax_deeplab/kmax_meta_convnext_large_os32.textproto": (
        231867535,
        12049783,
    ),
    "ade20k/kmax_deeplab/kmax_meta_convnext_large_os32_res1281.textproto": (
        231867535,
        12049783,
    ),
    "ade20k/kmax_deeplab/kmax_meta_r50_os32.textproto": (56610703, 15861111),
    "ade20k/kmax_deeplab/kmax_meta_r50_os32_res1281.textproto": (56610703, 15861111),
    "cityscapes/kmax_deeplab/kmax_meta_axial_r50_os32.textproto": (74238714, 584979),
    "cityscapes/kmax_deeplab/kmax_meta_convnext_base_os32.textproto": (
        121336506,
        295187,
    ),
    "cityscapes/kmax_deeplab/kmax_meta_convnext_large_os32.textproto": (
        231662330,
        440083,
    ),
    "cityscapes/kmax_deeplab/kmax_meta_convnext_small_os32.textproto": (
        82393754,
        222739,
    ),
    "cityscapes/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto": (
        60759194,
        222739,
    ),
    "cityscapes/kmax_deeplab/kmax_meta_r50_os32.textproto": (56401146, 584979),
    "coco/kmax_deeplab/kmax_meta_axial_r50_os32.textproto": (74415512, 15856742),
    "coco/kmax_deeplab/kmax_meta_convnext_base_os32.textproto": (121513304, 8234086),
    "coco/kmax_deeplab/kmax_meta_convnext_large_os32.textproto": (
        231836952,
        12045414,
    ),
    "coco/kmax_deeplab/kmax_meta_convnext_small_os32.textproto": (82571640, 6328422),
    "coco/kmax_deeplab/kmax_meta_convnext_tiny_os32.textproto": (60937080, 6328422),
    "coco/kmax_deeplab/kmax_meta_r50_os32.textproto": (56580120, 15856742),
    # DeepLab2's kmax_deeplab_test.py asserts this one (on coco_panoptic).
    "example/example_coco_kmax_meta_convnext.textproto": (121513304, 8234086),
}

# DeepLab2's COCO kMaX R50 model, transformer blocks (2, 2, 2) and (1, 1, 1)
# (tests/testdata/reference/deeplab2_kmax_r50_params.json).
R50_COMPONENTS = {
    "encoder": 23508032,
    "pixel_decoder": 21151040,
    "pixel_space_head": 105856,
    "transformer_mask_head": 33024,
    "transformer_class_head": 34438,
    "pixel_space_feature_batch_norm": 256,
    "pixel_space_mask_batch_norm": 2,
}
R50_TRANSFORMER_DECODER = {(2, 2, 2): 11747472, (1, 1, 1): 5956168}
R50_TOTAL = {(2, 2, 2): 56580120, (1, 1, 1): 50788816}
R50_PER_LAYER = [2148888, 2148888, 1886744, 1886744, 1755672, 1755672]
R50_AUXILIARY_SEMANTIC = 15856742
R50_NON_TRAINABLE_WITH_AUXILIARY = 213934
R50_NUM_TRAINABLE_VARIABLES = 718


def test_r50_numbers_are_those_of_the_reference_file(testdata):
    reference = json.loads(
        (testdata / "reference" / "deeplab2_kmax_r50_params.json").read_text()
    )["variants"]
    for blocks in R50_TOTAL:
        variant = reference["transformer_blocks_" + "_".join(map(str, blocks))]
        components = variant["components"]
        assert variant["trainable_excluding_auxiliary_semantic"] == R50_TOTAL[blocks]
        assert components["transformer_decoder"] == R50_TRANSFORMER_DECODER[blocks]
        assert components["auxiliary_semantic"] == R50_AUXILIARY_SEMANTIC
        for name in ("encoder", "pixel_decoder"):
            assert components[name] == R50_COMPONENTS[name]
        for name, count in variant["heads_detail"].items():
            assert R50_COMPONENTS[name] == count
    full = reference["transformer_blocks_2_2_2"]
    assert full["transformer_decoder_detail"]["per_kmax_layer"] == R50_PER_LAYER
    assert full["non_trainable"] == R50_NON_TRAINABLE_WITH_AUXILIARY
    assert full["num_trainable_variables"] == R50_NUM_TRAINABLE_VARIABLES


def _count(variables):
    return int(sum(np.prod(v.shape.as_list()) for v in variables))


def _r50_config(blocks):
    # The project's kmax_r50 config is DeepLab2's COCO R50 recipe.
    return load_config(
        os.path.join(REPO, "configs", "coco", "kmax_r50.textproto"),
        [f"model_options.max_deeplab.transformer_decoder_num_blocks={list(blocks)}"],
        environ=PROJECT_ENV,
    )


@pytest.mark.slow  # builds two full COCO kMaX-R50 models
@pytest.mark.parametrize("blocks", [(2, 2, 2), (1, 1, 1)])
def test_coco_r50_matches_deeplab2_exactly(blocks):
    tf_keras.backend.clear_session()
    model = build_model(_r50_config(blocks))
    images = tf.zeros([1, CROP, CROP, 3])
    model(images, training=False)
    assert _count(model.trainable_variables) == R50_TOTAL[blocks]
    items = model.checkpoint_items
    for name, expected in R50_COMPONENTS.items():
        assert _count(items[name].trainable_variables) == expected, name
    decoder = items["transformer_decoder"]
    assert _count(decoder.trainable_variables) == R50_TRANSFORMER_DECODER[blocks]
    if blocks != (2, 2, 2):
        return
    layers = [layer for stage in decoder._layers_per_stage for layer in stage]
    assert [_count(layer.trainable_variables) for layer in layers] == R50_PER_LAYER
    model(images, training=True)
    training_only = [v for v in model.training_only_variables if v.trainable]
    assert _count(training_only) == R50_AUXILIARY_SEMANTIC
    assert _count(model.non_trainable_variables) == R50_NON_TRAINABLE_WITH_AUXILIARY
    assert len(model.trainable_variables) == R50_NUM_TRAINABLE_VARIABLES


def _project_configs():
    pattern = os.path.join(REPO, "configs", "**", "*.textproto")
    return sorted(glob.glob(pattern, recursive=True))


# ReMaX Table 12: pixel-decoder and transformer-decoder blocks per model.
PAPER_FAMILY = {
    "remax_t": ([1, 1, 1, 1], [1, 1, 1]),
    "remax_s": ([1, 1, 1, 1], [1, 1, 1]),
    "remax_m": ([1, 5, 1, 1], [1, 1, 1]),
    "remax_b": ([1, 5, 1, 1], [2, 2, 2]),
}


@pytest.mark.parametrize("path", _project_configs(), ids=os.path.basename)
def test_project_configs_build(path, monkeypatch):
    # The backbones are tested with the encoders; here only what the builder
    # passes to them is recorded (building seven ResNets would be slow).
    encoder_calls = []

    def fake_encoder(name, **kwargs):
        encoder_calls.append((name, kwargs))
        return tf_keras.Sequential(name=name)

    monkeypatch.setattr(builder, "build_pixel_encoder", fake_encoder)
    config = load_config(path, environ=PROJECT_ENV)
    model = build_model(config)
    backbone = config.model_options.backbone
    ((name, kwargs),) = encoder_calls
    assert name == backbone.name
    assert kwargs["drop_path_keep_prob"] == pytest.approx(backbone.drop_path_keep_prob)
    assert ("drop_path_schedule" in kwargs) == backbone.HasField("drop_path_schedule")
    remax = config.model_options.HasField("remax")
    layers = model._transformer_decoder.num_layers
    assert model.num_relaxed_layers == (min(4, layers) if remax else 0)
    dataset = config.train_dataset_options.dataset
    expected_stride = 2 if dataset == "cityscapes_panoptic" else 4
    assert model._pixel_decoder.output_strides[-1] == expected_stride
    name = os.path.splitext(os.path.basename(path))[0]
    if name in PAPER_FAMILY and "/coco/" in path:
        pixel, transformer = PAPER_FAMILY[name]
        assert model._pixel_decoder.num_blocks == pixel
        assert model._transformer_decoder.num_blocks == transformer


DEEPLAB2_ROOT = os.environ.get("DEEPLAB2_ROOT")


@pytest.mark.skipif(
    not DEEPLAB2_ROOT,
    reason="set DEEPLAB2_ROOT to a google-research/deeplab2 checkout to build its 17 "
    "kMaX configs (a few minutes)",
)
@pytest.mark.parametrize("relative", sorted(DEEPLAB2_COUNTS))
def test_deeplab2_kmax_configs_build_with_deeplab2_counts(relative):
    path = os.path.join(DEEPLAB2_ROOT, "configs", relative)
    config = load_config(path, environ=DEEPLAB2_ENV)
    tf_keras.backend.clear_session()
    model = build_model(config)
    images = tf.zeros([1, CROP, CROP, 3])
    model(images, training=False)
    inference, training_only = DEEPLAB2_COUNTS[relative]
    assert _count(model.trainable_variables) == inference
    model(images, training=True)
    assert _count([v for v in model.training_only_variables if v.trainable]) == (
        training_only
    )
