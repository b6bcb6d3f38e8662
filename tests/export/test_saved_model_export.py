"""SavedModel export: parity with the evaluation path, loaded by a process
that has only TensorFlow (no remax_tf), and nothing training-only inside."""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.benchmarking.macs import op_macs
from remax_tf.postprocess.undo_preprocessing import MAP_KEYS

# Runs in a fresh interpreter: plain TensorFlow, as on a serving machine.
_LOAD_AND_RUN = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, images_file, output_file = sys.argv[1:4]
loaded = tf.saved_model.load(path)
images = np.load(images_file)
results = {}
single = loaded.signatures["serving_default"]
for name in images.files:
    for key, value in single(image=tf.constant(images[name])).items():
        results[name + "/" + key] = value.numpy()
batch = np.stack([images["crop"], images["crop"][:, ::-1]])
for key, value in loaded.signatures["serve_batch"](images=tf.constant(batch)).items():
    results["batch/" + key] = value.numpy()
np.savez(output_file, **results)
variables = loaded.inference_variables
print(json.dumps({
    "num_variables": len(variables),
    "num_parameters": int(sum(np.prod(v.shape) for v in variables)),
    "names": [v.name for v in variables],
    "signatures": sorted(loaded.signatures),
    "remax_tf_imported": any(m.startswith("remax_tf") for m in sys.modules),
}))
"""


@pytest.fixture(scope="module")
def served(demo_export, test_images, tmp_path_factory, run_in_fresh_python):
    return run_in_fresh_python(
        _LOAD_AND_RUN,
        demo_export["saved_model"],
        test_images,
        tmp_path_factory.mktemp("served"),
    )


@pytest.mark.slow  # loads the export in a subprocess
def test_loads_without_remax_tf(served):
    info, _ = served
    assert not info["remax_tf_imported"]
    assert info["signatures"] == ["serve_batch", "serving_default"]


def _assert_map_equal(got, want, name):
    """Label maps identical; score maps equal up to float rounding (graph
    and eager kernels may round the last bit differently)."""
    if np.issubdtype(want.dtype, np.integer):
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.slow  # loads the export in a subprocess
def test_maps_equal_the_evaluation_path(served, keras_reference, test_images):
    _, outputs = served
    for name, image in test_images.items():
        reference = keras_reference[name]
        for key in MAP_KEYS:
            got = outputs[f"{name}/{key}"]
            assert got.shape == image.shape[:2], (name, key)
            assert got.dtype == reference[key].dtype, (name, key)
            _assert_map_equal(got, reference[key], f"{name}/{key}")
    # Not a trivial map: several segments of several classes.
    panoptic = outputs["large/" + common.PRED_PANOPTIC_KEY]
    assert len(np.unique(panoptic)) >= 3


@pytest.mark.slow  # loads the export in a subprocess
def test_batch_signature(served, keras_reference):
    _, outputs = served
    for key in MAP_KEYS:
        batch = outputs["batch/" + key]
        assert batch.shape[:3] == (2, *keras_reference["crop"][key].shape)
        _assert_map_equal(batch[0], keras_reference["crop"][key], f"batch/{key}")


@pytest.mark.slow  # loads the export in a subprocess
def test_only_inference_variables(served, demo_model):
    info, _ = served
    _, model = demo_model
    inference = model.inference_variables
    assert len(model.training_only_variables) > 0
    assert info["num_variables"] == len(inference) < len(model.variables)
    assert info["num_parameters"] == sum(v.shape.num_elements() for v in inference)
    assert not [n for n in info["names"] if "remax_semantic_head" in n]


def test_serving_graph_has_the_inference_flops(demo_model):
    """Multiply-adds of the exported graph = those of the Keras inference
    forward (post-processing adds no conv / matmul / einsum)."""
    from remax_tf.export.saved_model import build_serving_module

    config, model = demo_model
    crop = (65, 65)
    serving = build_serving_module(config, model).fixed_size_function(crop)

    @tf.function(input_signature=[tf.TensorSpec([1, *crop, 3], tf.float32)])
    def forward(images):
        return model(images, training=False)

    def macs(graph):
        return sum(op_macs(op) for op in graph.get_operations())

    expected = macs(forward.get_concrete_function().graph)
    assert expected > 0
    assert macs(serving.graph) == expected
