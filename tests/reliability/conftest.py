"""A tiny demo model (crop 65) and its training checkpoint, shared by the
reliability tests: the failures are checked on a real export and a real
checkpoint, cheaply."""

import pytest
import tensorflow as tf

from remax_tf.config import load_config
from remax_tf.config.small_crop import crop_overrides
from remax_tf.export.__main__ import main as export_main
from remax_tf.model import build_model

CONFIG = "configs/demo/shapes_remax.textproto"
CROP = 65


@pytest.fixture(scope="session")
def tiny_config(repo_root, tiny_model_overrides, tiny_remax_overrides):
    overrides = crop_overrides(CROP) + [*tiny_model_overrides, *tiny_remax_overrides]
    return load_config(
        str(repo_root / CONFIG),
        overrides,
        environ={"REMAX_DATA_DIR": "/nonexistent"},
        validate=False,
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    model = build_model(tiny_config)
    model(tf.zeros([1, CROP, CROP, 3]), training=False)
    return model


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_config, tiny_model, tmp_path_factory):
    """The trainer's --model_dir: ``<experiment_name>/ckpt-1`` and its
    ``checkpoint`` state file."""
    model_dir = tmp_path_factory.mktemp("model_dir")
    checkpoint = tf.train.Checkpoint(
        global_step=tf.Variable(1, dtype=tf.int64), **tiny_model.checkpoint_items
    )
    tf.train.CheckpointManager(
        checkpoint, str(model_dir / tiny_config.experiment_name), max_to_keep=1
    ).save(checkpoint_number=1)
    return model_dir


@pytest.fixture(scope="session")
def export_args(repo_root, tiny_checkpoint, tiny_model_overrides, tiny_remax_overrides):
    """``remax-export`` flags of a SavedModel export of the tiny checkpoint,
    given the trainer's --model_dir as ``--checkpoint``."""
    overrides = [*crop_overrides(CROP), *tiny_model_overrides, *tiny_remax_overrides]
    return [
        "--config_file",
        str(repo_root / CONFIG),
        "--checkpoint",
        str(tiny_checkpoint),
        "--format",
        "saved_model",
        *[flag for o in overrides for flag in ("--config_override", o)],
    ]


@pytest.fixture(scope="session")
def exported(export_args, tmp_path_factory):
    """The folder ``remax-export`` wrote (alone in its parent folder)."""
    out = tmp_path_factory.mktemp("exports") / "export"
    assert export_main([*export_args, "--output_dir", str(out)]) == 0
    return out
