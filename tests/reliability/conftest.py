"""A tiny demo model (crop 65) and its training checkpoint, shared by the
reliability tests: the failures are checked on a real export and a real
checkpoint, cheaply."""

import pytest
import tensorflow as tf

from remax_tf.config import load_config
from remax_tf.config.small_crop import crop_overrides
from remax_tf.model import build_model

CONFIG = "configs/demo/shapes_remax.textproto"
CROP = 65


def tiny_flags(tiny_model_overrides, tiny_remax_overrides):
    """``--config_override`` flags of the tiny model the fixtures build."""
    overrides = [*tiny_model_overrides, *tiny_remax_overrides]
    return [flag for o in overrides for flag in ("--config_override", o)]


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
