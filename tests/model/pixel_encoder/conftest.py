"""Shared fixtures of the pixel-encoder tests."""

import pytest
import tensorflow as tf

ENDPOINT_LEVELS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="session")
def images_65() -> tf.Tensor:
    """A [2, 65, 65, 3] batch already scaled to [-1, 1]."""
    return tf.random.stateless_uniform(
        [2, 65, 65, 3], seed=[0, 1], minval=-1.0, maxval=1.0
    )


@pytest.fixture(scope="session")
def assert_endpoints():
    """Checks stage1..5 / res1..5 against [(size, channels)] per level."""

    def check(outputs, expected, batch=2):
        assert set(outputs) == {
            f"{p}{k}" for p in ("stage", "res") for k in ENDPOINT_LEVELS
        }
        for level, (size, channels) in zip(ENDPOINT_LEVELS, expected):
            for prefix in ("stage", "res"):
                shape = tuple(outputs[f"{prefix}{level}"].shape)
                assert shape == (batch, size, size, channels), (prefix, level, shape)

    return check
