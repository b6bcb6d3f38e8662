"""load_config: placeholders, overrides, validation and ConfigError messages."""

import glob
import os
import pathlib
import textwrap

import pytest

from remax_tf.config import ConfigError
from remax_tf.config import load_config
from remax_tf.config import placeholder_names
from remax_tf.config import resolved
from remax_tf.data import datasets

REPO = pathlib.Path(__file__).resolve().parents[2]

VALID = textwrap.dedent(
    """\
    experiment_name: "${EXPERIMENT_NAME}"
    model_options {
      backbone { name: "kmax_resnet50" }
      max_deeplab {
        pixel_space_head { output_channels: 128 head_channels: 256 }
        auxiliary_semantic_head { output_channels: 134 head_channels: 256 }
      }
    }
    trainer_options {
      solver_options { base_learning_rate: 0.0005 optimizer: "adamw" }
    }
    train_dataset_options {
      dataset: "coco_panoptic"
      file_pattern: "${TRAIN_SET}"
      batch_size: 8
      crop_size: 641
      crop_size: 641
    }
    evaluator_options { transformer_post_processing: "maskwise" }
    """
)
ENV = {"EXPERIMENT_NAME": "exp", "TRAIN_SET": "/data/train-*.tfrecord"}


def write(tmp_path, text, name="config.textproto"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_valid_config_loads_with_placeholders(tmp_path):
    config = load_config(write(tmp_path, VALID), environ=ENV)
    assert config.experiment_name == "exp"
    assert list(config.train_dataset_options.file_pattern) == ["/data/train-*.tfrecord"]
    assert config.train_dataset_options.crop_size == [641, 641]


def test_unset_placeholders_raise_keep_or_read_empty(tmp_path):
    path = write(tmp_path, VALID)
    environ = {"EXPERIMENT_NAME": "exp"}
    assert placeholder_names(VALID) == ["EXPERIMENT_NAME", "TRAIN_SET"]
    with pytest.raises(ConfigError, match=r"\$\{TRAIN_SET\} is not set"):
        load_config(path, environ=environ)
    kept = load_config(path, environ=environ, unset_placeholders="keep")
    assert list(kept.train_dataset_options.file_pattern) == ["${TRAIN_SET}"]
    empty = load_config(path, environ=environ, unset_placeholders="empty")
    assert list(empty.train_dataset_options.file_pattern) == [""]
    assert empty.experiment_name == "exp"  # set ones keep their values
    with pytest.raises(ValueError, match="unset_placeholders"):
        load_config(path, environ=environ, unset_placeholders="skip")


def test_placeholders_come_from_os_environ(tmp_path, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert load_config(write(tmp_path, VALID)).experiment_name == "exp"


def test_unset_placeholder_names_file_line_and_variable(tmp_path):
    path = write(tmp_path, VALID)
    with pytest.raises(ConfigError) as e:
        load_config(path, environ={"EXPERIMENT_NAME": "x"})
    msg = str(e.value)
    assert f"{path}:14" in msg and "${TRAIN_SET}" in msg and "export TRAIN_SET=" in msg


def test_unknown_field_names_file_line_and_field(tmp_path):
    path = write(tmp_path, VALID.replace("batch_size: 8", "batch_sise: 8"))
    with pytest.raises(ConfigError) as e:
        load_config(path, environ=ENV)
    msg = str(e.value)
    assert f"{path}:15:" in msg and "batch_sise" in msg and "Fix:" in msg


def test_wrong_type_names_the_value(tmp_path):
    path = write(tmp_path, VALID.replace("batch_size: 8", 'batch_size: "eight"'))
    with pytest.raises(ConfigError) as e:
        load_config(path, environ=ENV)
    assert f"{path}:15:" in str(e.value) and "eight" in str(e.value)


def test_crop_not_32k_plus_1_suggests_a_fix(tmp_path):
    path = write(
        tmp_path,
        VALID.replace(
            "crop_size: 641\n  crop_size: 641", "crop_size: 640\n  crop_size: 641"
        ),
    )
    with pytest.raises(ConfigError) as e:
        load_config(path, environ=ENV)
    msg = str(e.value)
    assert (
        "train_dataset_options.crop_size" in msg and "640" in msg and "use 641" in msg
    )


def test_unknown_dataset_lists_known_ones(tmp_path):
    path = write(tmp_path, VALID.replace('"coco_panoptic"', '"coco_panoptik"'))
    with pytest.raises(ConfigError) as e:
        load_config(path, environ=ENV)
    msg = str(e.value)
    assert (
        "coco_panoptik" in msg
        and "shapes_panoptic" in msg
        and "build_custom_data" in msg
    )


def test_unknown_backbone_lists_known_ones(tmp_path):
    path = write(tmp_path, VALID.replace("kmax_resnet50", "kmax_resnet5O"))
    with pytest.raises(ConfigError) as e:
        load_config(path, environ=ENV)
    msg = str(e.value)
    assert "model_options.backbone.name" in msg and "kmax_resnet5O" in msg
    assert "kmax_mobilenet_v3_small" in msg


def test_batch_must_divide_into_replicas(tmp_path):
    path = write(tmp_path, VALID.replace("batch_size: 8", "batch_size: 6"))
    load_config(path, environ=ENV, num_replicas=2)
    with pytest.raises(ConfigError, match=r"batch_size = 6.*4 replica"):
        load_config(path, environ=ENV, num_replicas=4)


def test_thresholds_and_remax_values_are_range_checked(tmp_path):
    text = VALID.replace(
        'evaluator_options { transformer_post_processing: "maskwise" }',
        "evaluator_options { pixel_confidence_threshold: 1.4 }",
    ).replace("max_deeplab {", 'remax { eta: 2.0 activation: "relu" }\n  max_deeplab {')
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), environ=ENV)
    msg = str(e.value)
    assert "pixel_confidence_threshold = 1.4" in msg
    assert "model_options.remax.eta = 2:" in msg
    assert "model_options.remax.activation = 'relu'" in msg


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "nope.textproto"))


def test_overrides_replace_scalars_lists_strings_and_merge_messages(tmp_path):
    config = load_config(
        write(tmp_path, VALID),
        overrides=[
            "trainer_options.solver_options.base_learning_rate=0.01",
            "train_dataset_options.crop_size=[129, 129]",
            "train_dataset_options.dataset=shapes_panoptic",
            "model_options.remax={eta: 0.2 num_relaxed_stages: 2}",
        ],
        environ=ENV,
    )
    assert config.trainer_options.solver_options.base_learning_rate == pytest.approx(
        0.01
    )
    assert list(config.train_dataset_options.crop_size) == [129, 129]
    assert config.train_dataset_options.dataset == "shapes_panoptic"
    assert config.model_options.remax.eta == pytest.approx(0.2)
    assert config.model_options.remax.activation == "sigmoid"


@pytest.mark.parametrize(
    "override,match",
    [
        ("trainer_options.solver_options.base_lr=1", "no field 'base_lr'"),
        ("trainer_options.solver_options.base_learning_rate", "not of the form"),
        ("train_dataset_options.batch_size=many", "int32"),
        ("train_dataset_options.crop_size.x=1", "not a singular message"),
    ],
)
def test_bad_overrides_are_config_errors(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, VALID), overrides=[override], environ=ENV)


def test_kmax_settings_default_to_deeplab2_per_dataset():
    from remax_tf.protos import model_pb2

    options = model_pb2.ModelOptions()
    options.max_deeplab.SetInParent()
    coco = resolved.resolve_kmax_settings(
        options, datasets.get_dataset_descriptor("coco_panoptic")
    )
    assert coco.num_mask_slots == 128 and coco.pixel_decoder_output_stride == 4
    assert coco.pixel_decoder_widths == (512, 256, 128, 64)
    assert coco.pixel_decoder_num_blocks == (1, 5, 1, 1)
    assert coco.transformer_decoder_num_blocks == (2, 2, 2)
    assert coco.transformer_decoder_strides == (32, 16, 8)
    assert coco.transformer_decoder_drop_path_keep_prob == pytest.approx(0.8)
    assert not coco.remax.enabled
    city = resolved.resolve_kmax_settings(
        options, datasets.get_dataset_descriptor("cityscapes_panoptic")
    )
    assert city.num_mask_slots == 256 and city.pixel_decoder_output_stride == 2
    assert city.pixel_decoder_widths == (512, 256, 128, 64, 32)
    assert not city.use_auxiliary_semantic_decoder
    ade = resolved.resolve_kmax_settings(
        options, datasets.get_dataset_descriptor("ade20k_panoptic")
    )
    assert ade.transformer_decoder_drop_path_keep_prob == pytest.approx(1.0)
    # An explicit field wins over the dataset default.
    options.max_deeplab.num_mask_slots = 64
    options.remax.SetInParent()
    custom = resolved.resolve_kmax_settings(
        options, datasets.get_dataset_descriptor("cityscapes_panoptic")
    )
    assert custom.num_mask_slots == 64
    assert custom.remax.enabled and custom.remax.activation == "sigmoid"


def test_project_configs_all_load():
    paths = sorted(
        glob.glob(str(REPO / "configs" / "**" / "*.textproto"), recursive=True)
    )
    env = dict(
        os.environ,
        TRAIN_SET="/d/train*",
        VAL_SET="/d/val*",
        INIT_CHECKPOINT="",
        EXPERIMENT_NAME="e",
        PRETRAINED_WEIGHTS="",
        REMAX_DATA_DIR="/tmp/remax_data",
    )
    for path in paths:
        load_config(path, environ=env)


DEEPLAB2_ROOT = os.environ.get("DEEPLAB2_ROOT")


@pytest.mark.skipif(
    not DEEPLAB2_ROOT,
    reason="set DEEPLAB2_ROOT to a google-research/deeplab2 checkout to parse its 17 kMaX configs",
)
def test_real_deeplab2_kmax_configs_load_unchanged():
    paths = sorted(
        glob.glob(
            os.path.join(DEEPLAB2_ROOT, "configs", "*", "kmax_deeplab", "*.textproto")
        )
    )
    paths += sorted(
        glob.glob(os.path.join(DEEPLAB2_ROOT, "configs", "example", "*kmax*.textproto"))
    )
    assert len(paths) == 17
    env = {
        "EXPERIMENT_NAME": "e",
        "INIT_CHECKPOINT": "",
        "TRAIN_SET": "/t",
        "VAL_SET": "/v",
        "PRETRAINED_WEIGHTS": "",
    }
    for path in paths:
        config = load_config(path, environ=env)
        assert config.model_options.WhichOneof("meta_architecture") == "max_deeplab"
    # The ADE20K ConvNeXt-L config uses a field DeepLab2's own proto lacks.
    ade = load_config(
        os.path.join(
            DEEPLAB2_ROOT,
            "configs/ade20k/kmax_deeplab/kmax_meta_convnext_large_os32.textproto",
        ),
        environ=env,
    )
    assert ade.model_options.max_deeplab.HasField(
        "transformer_decoder_drop_path_keep_prob"
    )


def test_message_override_replaces_lists_inside_and_keeps_other_fields(tmp_path):
    text = VALID.replace(
        "max_deeplab {",
        "remax { eta: 0.05 semantic_head_atrous_rates: [6, 12, 18] }\n  max_deeplab {",
    )
    config = load_config(
        write(tmp_path, text),
        overrides=["model_options.remax={semantic_head_atrous_rates: [1, 2, 3]}"],
        environ=ENV,
    )
    assert list(config.model_options.remax.semantic_head_atrous_rates) == [1, 2, 3]
    assert config.model_options.remax.eta == pytest.approx(0.05)


def test_one_rule_names_the_dataset_and_an_unset_one_is_an_error(tmp_path):
    from remax_tf.config.dataset_choice import dataset_name

    config = load_config(write(tmp_path, VALID), environ=ENV)
    assert dataset_name(config, "train") == dataset_name(config, "eval")
    config.eval_dataset_options.dataset = "shapes_panoptic"
    assert dataset_name(config, "train") == "coco_panoptic"
    assert dataset_name(config, "eval") == "shapes_panoptic"
    config.ClearField("train_dataset_options")
    assert dataset_name(config, "train") == "shapes_panoptic"
    config.ClearField("eval_dataset_options")
    with pytest.raises(ConfigError, match="dataset is not set"):
        dataset_name(config)
    # Was silently COCO's 134 classes; now the validator says so.
    unset = VALID.replace('dataset: "coco_panoptic"', "")
    with pytest.raises(ConfigError, match="train_dataset_options.dataset is not set"):
        load_config(write(tmp_path, unset), environ=ENV)
