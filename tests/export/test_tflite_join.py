"""tflite_join.join_tflite: two converted files become one that gives the
same outputs as running them one after the other."""

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf

from remax_tf.export import tflite
from remax_tf.export.tflite_join import join_tflite


def _convert(function, specs):
    concrete = tf.function(function, input_signature=[specs]).get_concrete_function()
    content = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], tf.Module()
    ).convert()
    return tflite._signed(content, concrete)


def _halve_until_small(x):
    # A WHILE in each file, so the second's loop subgraphs are renumbered.
    return tf.while_loop(lambda v: tf.reduce_max(v) > 1.0, lambda v: [v / 2.0], [x])[0]


def _first(inputs):
    x = inputs["image"]
    return {"a": _halve_until_small(x * 3.0), "b": tf.reduce_sum(x, axis=-1)}


def _second(inputs):
    a, b = inputs["a"], inputs["b"]
    return {"maps": _halve_until_small(a * 10.0) + b[..., None], "count": tf.shape(a)}


_IMAGE = {"image": tf.TensorSpec([1, 4, 4, 3], tf.float32, "image")}
_FED = {
    "a": tf.TensorSpec([1, 4, 4, 3], tf.float32, "a"),
    "b": tf.TensorSpec([1, 4, 4], tf.float32, "b"),
}


def _run(content, **feed):
    return Interpreter(model_content=content).get_signature_runner()(**feed)


def test_joined_file_equals_the_two_files_in_turn():
    first, second = _convert(_first, _IMAGE), _convert(_second, _FED)
    joined = join_tflite(first, second)
    assert tflite.op_types(joined)["WHILE"] == 2
    image = np.random.default_rng(0).uniform(0, 50, (1, 4, 4, 3)).astype(np.float32)
    head = _run(first, image=image)
    expected = {**head, **_run(second, **head)}
    got = _run(joined, image=image)
    assert sorted(got) == ["a", "b", "count", "maps"]
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_inputs_the_first_file_does_not_give_are_named():
    first = _convert(lambda i: {"a": i["image"] * 2.0}, _IMAGE)
    with pytest.raises(ValueError, match=r"inputs \['b'\] are not outputs"):
        join_tflite(first, _convert(_second, _FED))
    wrong = _convert(
        lambda i: {"a": i["image"] * 1.0, "b": i["image"] * 2.0},
        _IMAGE,
    )
    with pytest.raises(ValueError, match="'b': the first file gives"):
        join_tflite(wrong, _convert(_second, _FED))


def test_signature_names_follow_the_function_not_the_converter_order():
    """The converter listed these two inputs and two outputs in reverse
    order; the signature still names each tensor after its own key."""
    first, second = _convert(_first, _IMAGE), _convert(_second, _FED)
    image = np.ones((1, 4, 4, 3), np.float32)
    head = _run(first, image=image)
    assert head["a"].shape == (1, 4, 4, 3) and head["b"].shape == (1, 4, 4)
    np.testing.assert_array_equal(head["b"], np.full((1, 4, 4), 3.0))
    details = (
        Interpreter(model_content=second).get_signature_runner().get_input_details()
    )
    assert list(details["a"]["shape"]) == [1, 4, 4, 3]
    assert list(details["b"]["shape"]) == [1, 4, 4]
