"""A tiny shapes_panoptic dataset and a tiny demo config for trainer tests."""

import os
import pathlib

import pytest

from remax_tf.config import load_config
from remax_tf.data import shapes

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO_CONFIG = str(REPO / "configs" / "demo" / "shapes_remax.textproto")

# For the tests of the training machinery (not of the model): kMaX without
# ReMaX and a single decoder layer, which halves graph construction time.
LIGHT_CONFIG = str(REPO / "configs" / "demo" / "shapes_kmax.textproto")
LIGHT_BLOCKS = (
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
def light_overrides(tiny_overrides):
    """The tiny settings without ReMaX, one decoder layer."""
    return (
        tuple(o for o in tiny_overrides if not o.startswith("model_options.remax"))
        + LIGHT_BLOCKS
    )


@pytest.fixture(scope="session")
def light_config_factory(tiny_data_dir, light_overrides):
    env = dict(os.environ, REMAX_DATA_DIR=tiny_data_dir)

    def make(*overrides):
        return load_config(
            LIGHT_CONFIG, light_overrides + tuple(overrides), environ=env
        )

    return make


@pytest.fixture(scope="session")
def light_command(light_overrides):
    """(config path, overrides) for trainer subprocesses of the light model."""
    return LIGHT_CONFIG, light_overrides


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
def tiny_config_factory(tiny_data_dir, tiny_overrides):
    env = dict(os.environ, REMAX_DATA_DIR=tiny_data_dir)

    def make(*overrides, path: str = DEMO_CONFIG):
        return load_config(path, tiny_overrides + tuple(overrides), environ=env)

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
