"""A tiny shapes_panoptic dataset and a tiny demo config for trainer tests."""

import os
import pathlib

import pytest

from remax_tf.config import load_config
from remax_tf.data import shapes

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO_CONFIG = str(REPO / "configs" / "demo" / "shapes_remax.textproto")

# 65x65 crops, batch 2, narrow decoder: a few seconds per traced step on CPU.
TINY_OVERRIDES = (
    "train_dataset_options.crop_size=[65, 65]",
    "train_dataset_options.min_resize_value=[65]",
    "train_dataset_options.max_resize_value=[65]",
    "train_dataset_options.batch_size=2",
    "eval_dataset_options.crop_size=[65, 65]",
    "eval_dataset_options.min_resize_value=[65]",
    "eval_dataset_options.max_resize_value=[65]",
    "model_options.max_deeplab.num_mask_slots=8",
    "model_options.max_deeplab.pixel_decoder_widths=[32, 16, 16, 8]",
    "model_options.max_deeplab.transformer_decoder_channels=32",
    "model_options.max_deeplab.transformer_decoder_ffn_channels=64",
    "model_options.max_deeplab.transformer_decoder_num_heads=2",
    "model_options.max_deeplab.pixel_space_head={output_channels: 16 head_channels: 32}",
    "model_options.remax={semantic_head_channels: 8 semantic_head_atrous_rates: [1, 2, 3]}",
    "trainer_options.steps_per_loop=2",
    "trainer_options.save_checkpoints_steps=2",
    "trainer_options.save_summaries_steps=2",
    "trainer_options.solver_options.training_number_of_steps=4",
    "trainer_options.solver_options.warmup_steps=0",
    "evaluator_options.eval_steps=2",
)


# For the tests of the training machinery (not of the model): kMaX without
# ReMaX and a single decoder layer, which halves graph construction time.
LIGHT_CONFIG = str(REPO / "configs" / "demo" / "shapes_kmax.textproto")
LIGHT_OVERRIDES = tuple(
    o for o in TINY_OVERRIDES if not o.startswith("model_options.remax")
) + (
    "model_options.max_deeplab.transformer_decoder_num_blocks=[1]",
    "model_options.max_deeplab.transformer_decoder_strides=[32]",
)


@pytest.fixture(autouse=True)
def _no_graph_optimizer():
    """Grappler spends longer optimising the train step than these few-step
    runs spend executing it."""
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": before.get("disable_meta_optimizer", False)}
    )


@pytest.fixture(scope="session")
def light_config_factory(tiny_data_dir):
    env = dict(os.environ, REMAX_DATA_DIR=tiny_data_dir)

    def make(*overrides):
        return load_config(
            LIGHT_CONFIG, LIGHT_OVERRIDES + tuple(overrides), environ=env
        )

    return make


@pytest.fixture(scope="session")
def light_command():
    """(config path, overrides) for trainer subprocesses of the light model."""
    return LIGHT_CONFIG, LIGHT_OVERRIDES


@pytest.fixture(scope="session")
def tiny_overrides():
    return TINY_OVERRIDES


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("remax_data")
    shapes.generate(
        str(root / "shapes_panoptic"),
        num_train=12,
        num_val=4,
        seed=1,
        config=shapes.ShapesConfig(size=65),
        num_workers=1,
    )
    return str(root)


@pytest.fixture(scope="session")
def tiny_config_factory(tiny_data_dir):
    env = dict(os.environ, REMAX_DATA_DIR=tiny_data_dir)

    def make(*overrides, path: str = DEMO_CONFIG):
        return load_config(path, TINY_OVERRIDES + tuple(overrides), environ=env)

    return make


@pytest.fixture(scope="session")
def tiny_env(tiny_data_dir):
    """Environment for trainer subprocesses."""
    env = dict(
        os.environ,
        REMAX_DATA_DIR=tiny_data_dir,
        TF_CPP_MIN_LOG_LEVEL="2",
        REMAX_TF_DISABLE_GRAPPLER="1",
    )
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env
