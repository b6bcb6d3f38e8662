"""run_experiment end to end on a tiny config: artifacts, errors, NaN stop."""

import contextlib
import glob
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf import losses as losses_lib
from remax_tf.training import ConfigChangedError
from remax_tf.training import NonFiniteLossError
from remax_tf.training import TrainingSetupError
from remax_tf.training import run_experiment
from remax_tf.training.config_record import read_recorded_config
from remax_tf.training.train_lib import resolve_checkpoint

pytestmark = pytest.mark.slow  # trains


@pytest.fixture(scope="module")
def trained(tiny_config_factory, tmp_path_factory):
    """One train_and_eval run shared by the artifact tests, with its stdout."""
    config = tiny_config_factory("evaluator_options.save_predictions=true")
    model_dir = str(tmp_path_factory.mktemp("run"))
    lines = []
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        result = run_experiment(
            "train_and_eval", config, model_dir, progress=lines.append
        )
    return config, model_dir, result, lines, stdout.getvalue()


def test_train_and_eval_writes_deeplab2_layout(trained):
    config, model_dir, result, *_ = trained
    workdir = os.path.join(model_dir, config.experiment_name)
    assert result["model_dir"] == workdir and result["global_step"] == 4
    assert tf.train.latest_checkpoint(workdir).endswith("ckpt-4")
    assert glob.glob(os.path.join(workdir, "train", "events.out.tfevents.*"))
    assert glob.glob(os.path.join(workdir, "eval", "events.out.tfevents.*"))
    metrics = json.load(open(os.path.join(workdir, "eval", "metrics_latest.json")))
    assert metrics["global_step"] == 4 and metrics["num_images"] == 2
    assert 0.0 <= metrics["pq"] <= 1.0 and "per_class" in metrics
    assert result["metrics"]["num_images"] == 2


def test_model_dir_records_its_config_and_refuses_other_settings(
    trained, tiny_config_factory
):
    config, model_dir, *_ = trained
    workdir = os.path.join(model_dir, config.experiment_name)
    assert read_recorded_config(workdir) == config
    other = tiny_config_factory(
        "evaluator_options.save_predictions=true",
        "trainer_options.solver_options.base_learning_rate=0.01",
        "trainer_options.seed=7",
    )
    with pytest.raises(ConfigChangedError) as e:
        run_experiment("train_and_eval", other, model_dir)
    assert "was trained (up to step 4) with another config" in str(e.value)
    assert "trainer_options.solver_options.base_learning_rate: 0.003 -> 0.01" in str(
        e.value
    )
    assert "trainer_options.seed: 1 -> 7" in str(e.value)


def test_progress_reports_step_loss_speed(trained):
    *_, lines, _ = trained
    assert [int(s["step"]) for s in lines] == [2, 4]
    for stats in lines:
        assert np.isfinite(stats["loss"]) and stats["steps_per_second"] > 0
        assert stats["examples_per_second"] > 0 and stats["total_steps"] == 4


def test_summaries_hold_every_loss_term_and_the_learning_rate(trained):
    config, model_dir, *_ = trained
    tags = set()
    for path in glob.glob(
        os.path.join(model_dir, config.experiment_name, "train", "events.*")
    ):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert "learning_rate" in tags and "examples_per_second" in tags
    assert f"losses/{common.TOTAL_LOSS}" in tags
    assert "losses/aux_0remax_semantic_loss" in tags
    assert "losses/pq_style_loss_class_term" in tags
    # Ground truth beside the prediction on a fixed batch (num_summary_images).
    assert "panoptic/image_truth_prediction" in tags


def test_save_predictions_writes_coco_panoptic_files(trained):
    """evaluator_options.save_predictions (set in the shipped COCO, Cityscapes
    and ADE20K configs): COCO panoptic PNGs and JSON of the evaluated images."""
    config, model_dir, *_, stdout = trained
    folder = os.path.join(model_dir, config.experiment_name, "eval", "predictions")
    data = json.load(open(os.path.join(folder, "step_4.json")))
    assert len(data["annotations"]) == 2 and data["categories"]
    for annotation in data["annotations"]:
        assert os.path.isfile(os.path.join(folder, "step_4", annotation["file_name"]))
    assert f"[eval] predictions: {folder}/step_4.json" in stdout


def test_stdout_has_no_orbit_lines(trained):
    """orbit's own ``train | step: ... | output:`` lines (and its checkpoint
    notices) go to the absl log only; the evaluator's line stays."""
    *_, stdout = trained
    assert "[eval] step 4:" in stdout
    for line in stdout.splitlines():
        assert "| step:" not in line and "saved checkpoint" not in line, line


def test_eval_and_export_take_the_three_checkpoint_forms(trained):
    config, model_dir, *_ = trained
    workdir = os.path.join(model_dir, config.experiment_name)
    latest = os.path.join(workdir, "ckpt-4")
    assert resolve_checkpoint("eval", config, model_dir) == latest
    assert resolve_checkpoint("eval", config, workdir) == latest
    prefix = os.path.join(workdir, "ckpt-2")
    assert resolve_checkpoint("export", config, prefix) == prefix
    with pytest.raises(TrainingSetupError, match="--mode=export: no checkpoint"):
        resolve_checkpoint("export", config, os.path.join(workdir, "ckpt-3"))


def test_eval_of_a_ckpt_prefix_restores_that_checkpoint(trained, tmp_path):
    config, model_dir, *_ = trained
    prefix = os.path.join(model_dir, config.experiment_name, "ckpt-2")
    result = run_experiment("eval", config, prefix)
    assert result["global_step"] == 2 and result["metrics"]["global_step"] == 2


def test_nan_loss_stops_training_naming_step_and_term(
    light_config_factory, tmp_path, monkeypatch
):
    real_build = losses_lib.build_loss
    bad_term = common.MASK_ID_CROSS_ENTROPY_LOSS

    def build_with_nan(config, descriptor):
        loss = real_build(config, descriptor)
        step = {"n": tf.Variable(0, trainable=False)}

        class Poisoned:
            loss_names = loss.loss_names

            def __call__(self, y_true, y_pred):
                out = dict(loss(y_true, y_pred))
                step["n"].assign_add(1)
                # The third step's mask-ID term (and so the total) is NaN.
                nan = tf.where(step["n"] == 3, np.nan, 0.0)
                out[bad_term] += nan
                out[common.TOTAL_LOSS] += nan
                return out

        return Poisoned()

    monkeypatch.setattr(losses_lib, "build_loss", build_with_nan)
    config = light_config_factory(
        "trainer_options.solver_options.training_number_of_steps=6"
    )
    with pytest.raises(NonFiniteLossError) as e:
        run_experiment("train", config, str(tmp_path), progress=lambda s: None)
    assert e.value.step == 3 and e.value.term == bad_term
    assert "step 3" in str(e.value) and bad_term in str(e.value)
    # The loop of steps 3-4 raised before saving: the last checkpoint is step 2.
    workdir = os.path.join(str(tmp_path), config.experiment_name)
    assert tf.train.latest_checkpoint(workdir).endswith("ckpt-2")


def test_unwritable_model_dir_is_a_clear_error(tiny_config_factory, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TrainingSetupError, match="not writable"):
        run_experiment("train", tiny_config_factory(), str(blocker / "sub"))


def test_checkpoint_of_another_model_is_a_clear_error(
    trained, tiny_config_factory, tmp_path
):
    config, model_dir, *_ = trained
    other = tiny_config_factory("model_options.max_deeplab.num_mask_slots=12")
    with pytest.raises(TrainingSetupError, match="does not match the model"):
        run_experiment("eval", other, model_dir)


def test_eval_without_checkpoint_says_train_first(tiny_config_factory, tmp_path):
    with pytest.raises(TrainingSetupError, match="no checkpoint"):
        run_experiment("eval", tiny_config_factory(), str(tmp_path))


def test_empty_dataset_is_a_clear_error(tiny_config_factory, tmp_path):
    empty = tmp_path / "empty-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(empty)):
        pass
    config = tiny_config_factory(f"train_dataset_options.file_pattern=[{empty}]")
    with pytest.raises(TrainingSetupError, match="none holds an example"):
        run_experiment("train", config, str(tmp_path / "run"), progress=lambda s: None)
