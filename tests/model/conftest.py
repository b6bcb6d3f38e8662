"""Shared checks of the model tests: the ``check_layer`` fixture, for any layer.

``check_layer`` builds and calls a layer, compares the output shape and the
trainable-parameter count with values derived by hand, checks that
``get_config`` holds exactly the constructor arguments, survives JSON, and
rebuilds a layer that computes the same function, then trains the rebuilt
layer for two SGD steps: every trainable variable gets a finite, non-zero
gradient and the outputs move.

Test modules cannot import each other or this file by name (pytest runs with
``--import-mode=importlib``), so the check is handed out as a fixture.
"""

import fnmatch
import inspect
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

_BASE_CONFIG_KEYS = {"name", "trainable", "dtype"}


def trainable_parameter_count(layer) -> int:
    return int(sum(np.prod(v.shape) for v in layer.trainable_weights))


def _float_outputs(outputs):
    return [t for t in tf.nest.flatten(outputs) if t.dtype.is_floating]


def _numpy(outputs):
    return [t.numpy() for t in tf.nest.flatten(outputs)]


def _check_config(layer, inputs, outputs):
    """get_config holds exactly the constructor arguments, survives JSON and
    rebuilds a layer that computes the same function; returns that clone."""
    config = layer.get_config()
    # Constructor arguments, including those a subclass passes on by kwargs.
    arguments = set()
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("remax_tf") and "__init__" in vars(cls):
            arguments |= set(inspect.signature(cls.__init__).parameters)
    arguments -= {"self", "kwargs"}
    assert set(config) - _BASE_CONFIG_KEYS == arguments
    json.dumps(config)  # plain values only

    clone = type(layer).from_config(json.loads(json.dumps(config)))
    clone(inputs, training=False)
    assert clone.get_config() == config
    clone.set_weights(layer.get_weights())
    for a, b in zip(_numpy(outputs), _numpy(clone(inputs, training=False))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    restored = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    return clone


def _check_training(layer, inputs, expected_zero_gradients, steps):
    """SGD steps on a random projection of the training-mode outputs.

    Every step: a finite scalar, finite gradients. Over the steps every
    trainable variable gets a non-zero gradient, except those whose names match
    a pattern of ``expected_zero_gradients``, which get none (zero or None).
    Several steps, because a zero-initialised gamma (DeepLab2's residual BNs)
    blocks its branch's gradient until the first step has moved it. After the
    steps the inference outputs are finite and have changed.
    """
    variables = layer.trainable_variables
    before = _numpy(layer(inputs, training=False))
    tf.random.set_seed(0)  # drop path
    projections = [
        tf.random.stateless_normal(tf.shape(t), seed=[i, 1])
        for i, t in enumerate(_float_outputs(layer(inputs, training=True)))
    ]
    # Mean, not sum, and a small rate: the step must move every weight, not
    # blow up a wide layer (a summed projection over every pixel did, for the
    # pixel decoder, depending on the random state).
    optimizer = tf_keras.optimizers.SGD(learning_rate=0.01)
    reached = [False] * len(variables)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            outputs = _float_outputs(layer(inputs, training=True))
            scalar = tf.add_n(
                [tf.reduce_mean(t * p) for t, p in zip(outputs, projections)]
            )
        assert np.isfinite(float(scalar))
        gradients = tape.gradient(scalar, variables)
        for index, (variable, gradient) in enumerate(zip(variables, gradients)):
            if gradient is None:
                continue
            gradient = tf.convert_to_tensor(gradient)
            assert np.all(np.isfinite(gradient.numpy())), variable.name
            reached[index] |= bool(tf.reduce_any(gradient != 0.0))
        optimizer.apply_gradients(
            (g, v) for g, v in zip(gradients, variables) if g is not None
        )

    def expected_zero(name):
        return any(fnmatch.fnmatch(name, p) for p in expected_zero_gradients)

    names = [v.name for v in variables]
    missing = [n for n, hit in zip(names, reached) if not hit and not expected_zero(n)]
    assert not missing, f"no gradient reached {missing}"
    unexpected = [n for n, hit in zip(names, reached) if hit and expected_zero(n)]
    assert not unexpected, f"expected no gradient, got one: {unexpected}"
    after = _numpy(layer(inputs, training=False))
    assert all(np.all(np.isfinite(a)) for a in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def run_layer_checks(
    layer,
    inputs,
    expected_shape,
    expected_params,
    *,
    train=True,
    expected_zero_gradients=(),
    steps=2,
):
    """Builds and calls ``layer`` at inference and checks it; returns the outputs.

    * the first output's shape (unless ``expected_shape`` is None) and the
      trainable-parameter count;
    * the config: exactly the constructor arguments, JSON-safe, and a layer
      rebuilt from it (given the weights) computes the same outputs; Keras
      (de)serialization finds the class;
    * with ``train`` and trainable weights: ``steps`` SGD steps on the rebuilt
      layer (the caller's layer is left untouched), see ``_check_training``;
      ``expected_zero_gradients`` are fnmatch patterns of variable names.
    """
    outputs = layer(inputs, training=False)
    first = tf.nest.flatten(outputs)[0]
    if expected_shape is not None:
        assert first.shape.as_list() == list(expected_shape)
    assert trainable_parameter_count(layer) == expected_params
    clone = _check_config(layer, inputs, outputs)
    if train and clone.trainable_variables:
        _check_training(clone, inputs, expected_zero_gradients, steps)
    return outputs


@pytest.fixture(scope="session")
def check_layer():
    """check_layer(layer, inputs, expected_shape, expected_params, *,
    train=True, expected_zero_gradients=(), steps=2) -> the inference outputs
    (``run_layer_checks``)."""
    return run_layer_checks


@pytest.fixture(scope="session")
def random_tensor():
    """random_tensor(*shape, seed=0) -> a float32 tensor of N(0, 1) values."""

    def make(*shape, seed=0):
        return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)

    return make


@pytest.fixture(scope="session")
def parameter_count():
    """parameter_count(layer) -> its number of trainable parameters."""
    return trainable_parameter_count
