"""A model_dir remembers the config it was trained with: a resumed run with
other training settings stops (ConfigChangedError listing ``field: old ->
new``) unless allowed; the same settings resume; a model_dir from before
configs were recorded resumes with a notice."""

import contextlib
import io
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.config import load_config
from remax_tf.data import datasets
from remax_tf.data import tfrecord
from remax_tf.training import ConfigChangedError
from remax_tf.training import run_experiment
from remax_tf.training.config_record import check_resume
from remax_tf.training.config_record import config_changes
from remax_tf.training.config_record import is_resumable
from remax_tf.training.config_record import read_recorded_config
from remax_tf.training.config_record import record_config
from remax_tf.training.train_lib import build_keras_model

pytestmark = pytest.mark.slow  # builds models

REPO = pathlib.Path(__file__).resolve().parents[2]
# kMaX without ReMaX, one decoder layer: the light config of the trainer tests.
CONFIG = str(REPO / "configs" / "demo" / "shapes_kmax.textproto")
SIZE = 65
STEPS = 1
LIGHT = (
    "model_options.max_deeplab.transformer_decoder_num_blocks=[1]",
    "model_options.max_deeplab.transformer_decoder_strides=[32]",
    f"trainer_options.solver_options.training_number_of_steps={STEPS}",
    "trainer_options.num_summary_images=0",
)
OTHER_SETTINGS = (
    "trainer_options.solver_options.base_learning_rate=0.002",
    "trainer_options.seed=2",
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """Two shapes_panoptic-labelled records (disc instances on ground)."""
    root = tmp_path_factory.mktemp("remax_data")
    (root / "shapes_panoptic").mkdir()
    rng = np.random.default_rng(0)
    image = tf.io.encode_png(np.zeros((SIZE, SIZE, 3), np.uint8)).numpy()
    examples = [
        tfrecord.make_example(
            image, "png", f"image_{i}", SIZE, SIZE,
            rng.choice(np.array([5 * 256, 1 * 256 + 1], np.int32), (SIZE, SIZE)),
        )
        for i in range(2)
    ]  # fmt: skip
    for split in ("train", "val"):
        path = root / "shapes_panoptic" / f"{split}-00000-of-00001.tfrecord"
        tfrecord.write_shard(str(path), examples)
    return str(root)


@pytest.fixture(scope="module")
def make_config(data_dir, tiny_model_overrides):
    def make(*overrides):
        return load_config(
            CONFIG,
            tiny_model_overrides + LIGHT + overrides,
            environ={"REMAX_DATA_DIR": data_dir},
        )

    return make


@pytest.fixture(scope="module")
def old_model_dir(make_config, tmp_path_factory) -> str:
    """A model_dir at step STEPS as a remax_tf from before configs were
    recorded left it: checkpoints, no config.textproto. (Saved, not trained:
    a resume at the step budget restores and runs no step.)"""
    config = make_config()
    model_dir = tmp_path_factory.mktemp("old_run")
    descriptor = datasets.get_dataset_descriptor("shapes_panoptic")
    model = build_keras_model(config, descriptor, [SIZE, SIZE], training=True)
    checkpoint = tf.train.Checkpoint(
        global_step=tf.Variable(STEPS, dtype=tf.int64), **model.checkpoint_items
    )
    workdir = str(model_dir / config.experiment_name)
    tf.train.CheckpointManager(checkpoint, workdir, max_to_keep=1).save(STEPS)
    return str(model_dir)


def _run(config, model_dir, **kwargs):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        result = run_experiment(
            "train", config, model_dir, progress=lambda s: None, **kwargs
        )
    return result, stdout.getvalue()


def _copy(old_model_dir, tmp_path, config=None) -> str:
    """A copy of the old model_dir, with ``config`` recorded if given."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(old_model_dir, model_dir)
    if config is not None:
        record_config(os.path.join(model_dir, config.experiment_name), config)
    return model_dir


def test_resume_compares_with_the_recorded_config(old_model_dir, make_config, tmp_path):
    config = make_config()
    model_dir = _copy(old_model_dir, tmp_path, config)
    workdir = os.path.join(model_dir, config.experiment_name)

    # The same settings, and changes of the allow-list (one notice each), resume.
    allowed = make_config("evaluator_options.eval_interval=7")
    result, stdout = _run(allowed, model_dir)
    assert result["global_step"] == STEPS and "restored" in stdout
    assert stdout.count("note:") == 1
    assert "note: evaluator_options.eval_interval changed on resume: 1000 -> 7" in (
        stdout
    )
    assert read_recorded_config(workdir) == allowed

    # Another learning rate and seed: stops before building anything.
    with pytest.raises(ConfigChangedError) as e:
        _run(make_config(*OTHER_SETTINGS), model_dir)
    message = str(e.value)
    assert f"model_dir {workdir} was trained (up to step {STEPS}) with another " in (
        message
    )
    assert "trainer_options.solver_options.base_learning_rate: 0.003 -> 0.002" in (
        message
    )
    assert "trainer_options.seed: 1 -> 2" in message
    assert "Fix: pass --allow_config_change" in message
    assert "or train into a fresh --model_dir" in message
    assert [c[0] for c in e.value.changes] == [
        "trainer_options.solver_options.base_learning_rate",
        "trainer_options.seed",
    ]
    assert read_recorded_config(workdir) == allowed  # unchanged

    # Allowed: resumes, records the new config, keeps the old one.
    other = make_config(*OTHER_SETTINGS)
    result, stdout = _run(other, model_dir, allow_config_change=True)
    assert result["global_step"] == STEPS and "restored" in stdout
    assert "note: trainer_options.seed changed on resume: 1 -> 2" in stdout
    assert read_recorded_config(workdir) == other
    kept = pathlib.Path(workdir, f"config.until_step_{STEPS}.textproto")
    assert "base_learning_rate: 0.003" in kept.read_text()


def test_model_dir_without_recorded_config_resumes_with_a_notice(
    old_model_dir, make_config, capsys
):
    config = make_config(*OTHER_SETTINGS)
    workdir = os.path.join(old_model_dir, config.experiment_name)
    check_resume(workdir, config, allow_config_change=False, mode="train")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "holds checkpoints but no recorded config" in out
    assert "resuming without comparing settings" in out


def test_changes_compare_values_not_spelling(make_config):
    base = make_config()
    explicit_default = make_config(
        "trainer_options.solver_options.use_gradient_clipping=false"
    )
    assert config_changes(base, explicit_default) == []
    remax = make_config("model_options.remax={eta: 0.2}")
    (change,) = config_changes(base, remax)
    assert change[0] == "model_options.remax" and change[1] == "(unset)"
    assert not is_resumable("model_options.remax")
    assert is_resumable("trainer_options.solver_options.training_number_of_steps")
    assert is_resumable("eval_dataset_options.file_pattern")
    assert not is_resumable("train_dataset_options.batch_size")


def test_cli_reports_the_changed_fields_with_exit_status_1(
    old_model_dir, make_config, data_dir, tiny_model_overrides, tmp_path
):
    model_dir = _copy(old_model_dir, tmp_path, make_config())
    env = dict(os.environ, REMAX_DATA_DIR=data_dir, REMAX_TF_DISABLE_GRAPPLER="1")
    # The command's quiet default; no traceback unless asked.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("REMAX_TF_DEBUG", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    overrides = tiny_model_overrides + LIGHT + OTHER_SETTINGS
    command = [sys.executable, "-m", "remax_tf.train", "--config_file", CONFIG]
    command += [f"--config_override={o}" for o in overrides]
    command += ["--model_dir", model_dir, "--mode", "train"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: model_dir {model_dir}/"), done.stderr
    assert "base_learning_rate: 0.003 -> 0.002" in done.stderr
    assert "trainer_options.seed: 1 -> 2" in done.stderr
    assert "--allow_config_change" in done.stderr
