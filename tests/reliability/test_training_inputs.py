"""Bad training inputs stop a run with a DataError or ConfigError naming the
culprit and the fix: TFRecords of another dataset (checked at the door,
before the model is built), damaged TFRecords (at the door and mid-run), a
label the in-graph check refuses, a crop smaller than the resize range; and
the trainer CLI prints them as one ``error:`` message with exit status 1."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.config import ConfigError
from remax_tf.config import load_config
from remax_tf.config.small_crop import crop_overrides
from remax_tf.data import build_dataset
from remax_tf.data import datasets
from remax_tf.data import label_checks
from remax_tf.data import tfrecord
from remax_tf.errors import DataError
from remax_tf.training import run_experiment
from remax_tf.training.inputs import explain_data_errors

REPO = pathlib.Path(__file__).resolve().parents[2]
# kMaX without ReMaX: the light config of the trainer tests.
CONFIG = str(REPO / "configs" / "demo" / "shapes_kmax.textproto")
SIZE = 65
COCO = datasets.get_dataset_descriptor("coco_panoptic")
# COCO labels (divisor 256): a person (thing 1) and a giraffe (thing 20) with
# instance ids, stuff class 120, void. Class 120 does not exist in the
# 8-class shapes_panoptic.
COCO_VALUES = (1 * 256 + 1, 20 * 256 + 2, 120 * 256, 0)
# shapes_panoptic labels: disc (thing 1) instance 1 on ground (stuff 5).
SHAPES_VALUES = (5 * 256, 1 * 256 + 1)


def _label(values, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array(values, np.int32), size=(SIZE, SIZE))


def write_records(path, labels) -> str:
    image = tf.io.encode_png(np.zeros((SIZE, SIZE, 3), np.uint8)).numpy()
    tfrecord.write_shard(
        str(path),
        [
            tfrecord.make_example(image, "png", f"image_{i}", SIZE, SIZE, label)
            for i, label in enumerate(labels)
        ],
    )
    return str(path)


def light_config(tiny_model_overrides, *overrides):
    return load_config(
        CONFIG,
        tiny_model_overrides
        + (
            "model_options.max_deeplab.transformer_decoder_num_blocks=[1]",
            "model_options.max_deeplab.transformer_decoder_strides=[32]",
        )
        + overrides,
        environ={"REMAX_DATA_DIR": "/nonexistent"},
    )


@pytest.fixture(scope="module")
def coco_records(tmp_path_factory) -> str:
    """Two COCO-labelled records: another dataset than the config's."""
    out = tmp_path_factory.mktemp("coco_like")
    labels = [_label(COCO_VALUES, seed) for seed in range(2)]
    return write_records(out / "train-00000-of-00001.tfrecord", labels)


@pytest.fixture(scope="module")
def shapes_records(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("shapes_like")
    labels = [_label(SHAPES_VALUES, seed) for seed in range(8)]
    return write_records(out / "train-00000-of-00001.tfrecord", labels)


def _truncated_copy(source: str, target: pathlib.Path, keep: float) -> str:
    data = pathlib.Path(source).read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return str(target)


def test_labels_of_another_dataset_stop_before_the_model_is_built(
    tiny_model_overrides, coco_records, tmp_path
):
    config = light_config(
        tiny_model_overrides,
        f"train_dataset_options.file_pattern=[{coco_records}]",
    )
    with pytest.raises(DataError) as e:
        run_experiment("train", config, str(tmp_path), progress=lambda s: None)
    message = str(e.value)
    for part in (
        f"train_dataset_options.file_pattern ['{coco_records}']",
        "the config's dataset 'shapes_panoptic' (train_dataset_options.dataset: "
        "8 classes",
        f"in {coco_records}, image 'image_0'",
        "semantic ids 20, 120",
        "These records fit dataset 'coco_panoptic' (134 classes, label divisor 256)",
        "Fix: point train_dataset_options.file_pattern at TFRecords built for "
        "'shapes_panoptic', or set train_dataset_options.dataset",
    ):
        assert part in message, message
    # Stopped at the door: no checkpoint, no recorded config.
    assert not list(tmp_path.rglob("ckpt-*")) and not list(
        tmp_path.rglob("*.textproto")
    )


def test_stuff_with_instance_ids_suggests_the_label_divisor(tmp_path):
    # Stuff 'ground' (5) with an instance id: what labels written with
    # another divisor decode to.
    path = write_records(tmp_path / "a.tfrecord", [np.full((SIZE, SIZE), 5 * 256 + 3)])
    shapes = datasets.get_dataset_descriptor("shapes_panoptic")
    with pytest.raises(
        DataError, match=r"stuff class 5 carries instance id 3 .*divisor"
    ):
        label_checks.check_first_records(
            [path], shapes, prefix="eval_dataset_options", patterns=[path]
        )


def test_labels_void_everywhere_are_refused(tmp_path):
    path = write_records(tmp_path / "a.tfrecord", [np.zeros((SIZE, SIZE), np.int32)])
    shapes = datasets.get_dataset_descriptor("shapes_panoptic")
    with pytest.raises(DataError, match="every pixel of the first 1 labels is void"):
        label_checks.check_first_records(
            [path], shapes, prefix="train_dataset_options", patterns=[path]
        )


def test_matching_labels_pass_the_door(shapes_records):
    shapes = datasets.get_dataset_descriptor("shapes_panoptic")
    label_checks.check_first_records(
        [shapes_records], shapes, prefix="train_dataset_options", patterns=["p"]
    )


def test_truncated_first_record_names_the_file_and_offset(
    tiny_model_overrides, shapes_records, tmp_path
):
    bad = _truncated_copy(shapes_records, tmp_path / "train-00000.tfrecord", 0.05)
    config = light_config(
        tiny_model_overrides, f"train_dataset_options.file_pattern=[{bad}]"
    )
    with pytest.raises(DataError) as e:
        run_experiment("train", config, str(tmp_path / "run"), progress=lambda s: None)
    message = str(e.value)
    assert message.startswith(
        f"train_dataset_options.file_pattern ['{bad}']: the TFRecord file {bad} is "
        "damaged: the file ends inside the record that starts at byte 0"
    )
    assert "The run stops here rather than skipping" in message
    assert "Fix: copy the file again or rebuild the TFRecords" in message


def test_damaged_record_mid_run_names_the_file_and_offset(
    tiny_model_overrides, shapes_records, tmp_path
):
    # The first records read fine (the door passes); the file is cut later.
    good = write_records(tmp_path / "train-00000-of-00002.tfrecord", [
        _label(SHAPES_VALUES, 1)] * 2)  # fmt: skip
    bad = _truncated_copy(
        shapes_records, tmp_path / "train-00001-of-00002.tfrecord", 0.6
    )
    pattern = str(tmp_path / "train-*.tfrecord")
    config = light_config(
        tiny_model_overrides,
        f"train_dataset_options.file_pattern=[{pattern}]",
        "train_dataset_options.shuffle_buffer_size=1",
    )
    label_checks.check_first_records(
        [good, bad],
        datasets.get_dataset_descriptor("shapes_panoptic"),
        prefix="train_dataset_options",
        patterns=[pattern],
        max_records=2,  # a batch, as the trainer checks
    )
    with pytest.raises(DataError) as e, explain_data_errors(config, "train"):
        for _ in build_dataset(config.train_dataset_options, is_training=True).take(8):
            pass
    message = str(e.value)
    size = os.path.getsize(bad)
    assert f"train_dataset_options.file_pattern ['{pattern}']" in message
    assert (
        f"['{pattern}']: the TFRecord file {bad} is damaged: the file ends inside "
        "the record that starts at byte "
    ) in message
    assert f"(file size {size} bytes)" in message


def test_a_bad_label_met_mid_run_is_a_data_error(tiny_model_overrides, tmp_path):
    labels = [_label(SHAPES_VALUES, 0)] * 3 + [_label(COCO_VALUES, 0)]
    path = write_records(tmp_path / "train-00000-of-00001.tfrecord", labels)
    config = light_config(
        tiny_model_overrides,
        f"train_dataset_options.file_pattern=[{path}]",
        "train_dataset_options.shuffle_buffer_size=1",
    )
    with pytest.raises(DataError) as e, explain_data_errors(config, "train"):
        for _ in build_dataset(config.train_dataset_options, is_training=True).take(4):
            pass
    message = str(e.value)
    assert message.startswith(f"train_dataset_options.file_pattern ['{path}']: image")
    assert 'image "image_3": label value 30720 decodes to semantic id 120' in message
    assert "which dataset 'shapes_panoptic' does not have" in message
    assert "The run stops rather than skipping the image." in message


def test_crop_smaller_than_the_resize_range_is_a_config_error(tiny_model_overrides):
    with pytest.raises(ConfigError) as e:
        load_config(
            CONFIG,
            ("train_dataset_options.crop_size=[65, 65]",),
            environ={"REMAX_DATA_DIR": "/d"},
        )
    message = str(e.value)
    assert (
        "train_dataset_options.max_resize_value = [129] exceeds "
        "train_dataset_options.crop_size = [65, 65]"
    ) in message
    assert "to at most the crop, e.g. 65" in message and "or to 0" in message
    # A larger min_resize_value alone is fine: max_resize_value caps it.
    load_config(
        CONFIG,
        crop_overrides(65) + ["train_dataset_options.min_resize_value=[129]"],
        environ={"REMAX_DATA_DIR": "/d"},
    )


@pytest.mark.parametrize("crop", [65, 129])
def test_every_project_config_validates_at_a_small_crop(crop):
    env = dict(
        TRAIN_SET="/d/train*",
        VAL_SET="/d/val*",
        INIT_CHECKPOINT="",
        EXPERIMENT_NAME="e",
        PRETRAINED_WEIGHTS="",
        REMAX_DATA_DIR="/d",
    )
    paths = sorted((REPO / "configs").rglob("*.textproto"))
    assert paths
    for path in paths:
        load_config(str(path), crop_overrides(crop), environ=env)


def _train_cli(args):
    env = dict(os.environ, REMAX_DATA_DIR="/nonexistent")
    # The command's own quiet default (no CUDA probing lines on stderr).
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("REMAX_TF_DEBUG", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "remax_tf.train", "--config_file", CONFIG, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _cli_args(coco_records, model_dir):
    overrides = crop_overrides(65) + [
        f"train_dataset_options.file_pattern=[{coco_records}]"
    ]
    return [f"--config_override={o}" for o in overrides] + ["--model_dir", model_dir]


@pytest.mark.slow  # a subprocess
def test_cli_prints_one_error_and_exits_1(coco_records, tmp_path):
    done = _train_cli(_cli_args(coco_records, str(tmp_path)))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: train_dataset_options.file_pattern"), (
        done.stderr
    )
    assert "'coco_panoptic' (134 classes" in done.stderr
    assert done.stderr.count("\n") == 1  # one line


@pytest.mark.parametrize("how", ["--debug", "REMAX_TF_DEBUG=1"])
def test_cli_debug_shows_the_traceback(
    how, coco_records, tmp_path, monkeypatch, capsys
):
    from absl import flags

    from remax_tf import train as train_cli

    monkeypatch.delenv("REMAX_TF_DEBUG", raising=False)
    argv = ["remax-train", "--config_file", CONFIG]
    argv += _cli_args(coco_records, str(tmp_path))
    if how == "--debug":
        argv.append("--debug")
    else:
        monkeypatch.setenv("REMAX_TF_DEBUG", "1")
    monkeypatch.setenv("REMAX_DATA_DIR", "/nonexistent")
    flags.FLAGS(argv)
    try:
        status = train_cli.main(["remax-train"])
    finally:
        flags.FLAGS.unparse_flags()
    err = capsys.readouterr().err
    assert status == 1
    assert "Traceback" in err and "DataError" in err
    assert "\nerror: train_dataset_options.file_pattern" in err
