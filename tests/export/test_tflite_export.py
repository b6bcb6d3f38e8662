"""TFLite export: builtin ops only, parity with Keras, runnable with only
``ai-edge-litert`` (no TensorFlow, no remax_tf), and the command line."""

import json

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.export import tflite
from remax_tf.export.__main__ import main as export_main
from remax_tf.postprocess.undo_preprocessing import MAP_KEYS

# Relative tolerance of fp32 logits (docs/export.md, "Accuracy of the exports").
FP32_RELATIVE_TOLERANCE = 1e-4
# Full int8 on this random-weight model (measured: class logits 2e-2 relative,
# 85-98% of panoptic pixels equal); the PQ change of a trained model is
# measured by benchmarks/quantization_pq.py.
INT8_CLASS_LOGITS_RELATIVE_TOLERANCE = 0.1
# Float post-processing of the same logits in TFLite and in TensorFlow.
INT8_MIN_PANOPTIC_AGREEMENT = 0.99

# Runs in a fresh interpreter with only ai_edge_litert and numpy, as on a
# phone-like target; docs/export.md shows the same calls.
_RUN_TFLITE = r"""
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

directory, images_file, output_file = sys.argv[1:4]
image = np.load(images_file)["crop"][None]

def runner(name):
    interpreter = Interpreter(model_path=f"{directory}/{name}", num_threads=2)
    return interpreter.get_signature_runner("serving_default")

results = {}
for key, value in runner("model_fp32.tflite")(image=image).items():
    results["fp32/" + key] = value
# One int8 file: the maps and the raw logits.
for key, value in runner("model_int8.tflite")(image=image).items():
    results["int8/" + key] = value
np.savez(output_file, **results)
print(json.dumps({
    "imported": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "remax_tf")),
}))
"""


@pytest.fixture(scope="module")
def litert_outputs(demo_export, test_images, tmp_path_factory, run_in_fresh_python):
    tflite_dir = str(next(iter(demo_export["tflite"].values()))).rsplit("/", 1)[0]
    info, outputs = run_in_fresh_python(
        _RUN_TFLITE,
        tflite_dir,
        {"crop": test_images["crop"]},
        tmp_path_factory.mktemp("litert"),
    )
    assert info["imported"] == []
    return {
        mode: {
            key.split("/", 1)[1]: value[0]
            for key, value in outputs.items()
            if key.startswith(mode + "/")
        }
        for mode in ("fp32", "int8")
    }


@pytest.mark.slow  # its fixture converts fp32 and int8 TFLite files
def test_files_and_builtin_ops(demo_export):
    assert sorted(demo_export["tflite"]) == [
        "model_fp32.tflite",
        "model_int8.tflite",
    ]
    ops = demo_export["tflite_ops"]
    for name, counts in ops.items():
        assert not [op for op in counts if op.startswith("CUSTOM")], name
    # Post-processing inside the fp32 graph: the paste loop, the pixel counts.
    for op in ("WHILE", "UNSORTED_SEGMENT_SUM", "ARG_MAX", "ONE_HOT", "BATCH_MATMUL"):
        assert op in ops["model_fp32.tflite"], op
    # The int8 file holds the float post-processing too (tflite_join).
    assert "WHILE" in ops["model_int8.tflite"]
    with open(demo_export["metadata"]) as f:
        metadata = json.load(f)
    assert metadata["tflite_input_size"] == [65, 65]
    assert metadata["label_divisor"] == 256
    assert metadata["descriptor"]["name"] == "shapes_panoptic"
    assert metadata["preprocess"]["crop_size"] == [65, 65]


def _int8_inputs_by_op(path):
    """Op type -> for each op of that type, whether its first input is int8
    (quantised; the post-processing's index arithmetic is int32)."""
    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.ModelT.InitFromPackedBuf(f.read(), 0)
    found = {}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            tensor = subgraph.tensors[op.inputs[0]]
            found.setdefault(tflite.op_type(model, op), []).append(
                tensor.type == schema.TensorType.INT8
            )
    return found


@pytest.mark.slow  # its fixture converts fp32 and int8 TFLite files
def test_int8_keeps_the_ops_xnnpack_cannot_run_in_int8_float(demo_export):
    """XNNPACK_FLOAT_OPS stay float in model_int8.tflite (each would split
    XNNPACK's delegated graph in int8); the convolutions are int8."""
    ops = _int8_inputs_by_op(demo_export["tflite"]["model_int8.tflite"])
    kept = [op for op in tflite.XNNPACK_FLOAT_OPS if op in ops]
    assert {"GELU", "HARD_SWISH", "SOFTMAX", "BATCH_MATMUL"} <= set(kept)
    for op in kept:
        assert not any(ops[op]), op
    assert all(ops["CONV_2D"]) and all(ops["DEPTHWISE_CONV_2D"])
    # INT8_WRONG_OPS: each k-means layer's one-hot assignment is float.
    interpreter = tf.lite.Interpreter(
        model_path=str(demo_export["tflite"]["model_int8.tflite"])
    )
    one_hot = [
        d["dtype"]
        for d in interpreter.get_tensor_details()
        if d["name"].endswith("/one_hot")
    ]
    assert one_hot and set(one_hot) == {np.float32}


def _relative_error(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.slow  # runs the files in a subprocess
def test_fp32_matches_keras(litert_outputs, keras_reference):
    got, want = litert_outputs["fp32"], keras_reference["crop"]
    for key in (
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY,
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY,
    ):
        assert _relative_error(got[key], want[key]) < FP32_RELATIVE_TOLERANCE, key
    for key in MAP_KEYS:
        assert got[key].dtype == want[key].dtype, key
        if np.issubdtype(want[key].dtype, np.integer):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        else:
            np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=key)
    assert len(np.unique(got[common.PRED_PANOPTIC_KEY])) >= 2


@pytest.mark.slow  # runs the files in a subprocess
def test_int8_with_float_postprocess(litert_outputs, keras_reference, demo_model):
    from remax_tf.data.datasets import get_dataset_descriptor
    from remax_tf.postprocess.post_processor import build_post_processor

    got, want = litert_outputs["int8"], keras_reference["crop"]
    key = common.PRED_TRANSFORMER_CLASS_LOGITS_KEY
    assert _relative_error(got[key], want[key]) < INT8_CLASS_LOGITS_RELATIVE_TOLERANCE
    panoptic = got[common.PRED_PANOPTIC_KEY]
    assert panoptic.shape == want[common.PRED_PANOPTIC_KEY].shape
    # The post-processing runs in float on the int8 network's own logits: the
    # Python post-processor on those logits gives the same map. (Agreement
    # with the float model's map is not asserted: the untrained fixture's
    # near-tied logits make it anything from 0.2 to 0.7 from run to run.)
    config, _ = demo_model
    post = build_post_processor(
        config.evaluator_options,
        get_dataset_descriptor(config.eval_dataset_options.dataset),
        panoptic.shape,
    )
    logits = {k: got[k][None] for k in (key, common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY)}
    expected = post(logits)[common.PRED_PANOPTIC_KEY][0].numpy()
    assert np.mean(panoptic == expected) >= INT8_MIN_PANOPTIC_AGREEMENT
    # Every id is void or a shapes_panoptic class (1..7) with divisor 256.
    assert set(np.unique(panoptic // 256)) <= set(range(8))


def test_quantize_argument_checks(demo_model):
    from remax_tf.export.saved_model import build_serving_module

    config, model = demo_model
    module = build_serving_module(config, model)
    with pytest.raises(ValueError, match="known modes: none, fp16, dynamic, int8"):
        tflite.convert_to_tflite(module, (65, 65), "int4")
    with pytest.raises(ValueError, match="needs representative_images"):
        tflite.convert_to_tflite(module, (65, 65), "int8")
    with pytest.raises(ValueError, match="apply to quantize='int8' only"):
        tflite.convert_to_tflite(module, (65, 65), "fp16", float_scopes=["x/"])
    with pytest.raises(ValueError, match=r"float_ops \['GLEU'\] are not TFLite"):
        tflite.convert_to_tflite(module, (65, 65), "int8", float_ops=["GLEU"])


@pytest.mark.slow  # runs the files in a subprocess
def test_command_line_exports_a_checkpoint(
    repo_root, demo_model, litert_outputs, test_images, tmp_path, capsys
):
    """``remax-export`` restores a training checkpoint named by the
    trainer's --model_dir (``model_dir/<experiment_name>/``, as the trainer
    saves it) and writes the same fp32 model as the in-process export."""
    from ai_edge_litert.interpreter import Interpreter

    config, model = demo_model
    checkpoint = tf.train.Checkpoint(
        global_step=tf.Variable(5, dtype=tf.int64), **model.checkpoint_items
    )
    prefix = tf.train.CheckpointManager(
        checkpoint, str(tmp_path / "run" / config.experiment_name), max_to_keep=1
    ).save(checkpoint_number=5)
    crop = ["--config_override", "eval_dataset_options.crop_size=[65, 65]"]
    for field in ("min_resize_value", "max_resize_value"):
        crop += ["--config_override", f"eval_dataset_options.{field}=65"]
    code = export_main(
        [
            "--config_file",
            str(repo_root / "configs/demo/shapes_remax.textproto"),
            "--checkpoint",
            str(tmp_path / "run"),
            "--output_dir",
            str(tmp_path / "out"),
            "--format",
            "tflite",
            *crop,
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert prefix in result["restore"]
    assert "saved_model" not in result
    runner = Interpreter(
        model_path=result["tflite"]["model_fp32.tflite"]
    ).get_signature_runner()
    outputs = runner(image=test_images["crop"][None])
    for key in MAP_KEYS:
        np.testing.assert_allclose(
            outputs[key][0], litert_outputs["fp32"][key], atol=1e-5, err_msg=key
        )


def test_float_ops_flag_defaults_to_the_xnnpack_list_and_none_clears_it():
    from remax_tf.export.__main__ import parse_args

    base = ["--config_file", "c", "--checkpoint", "k", "--output_dir", "o"]
    assert parse_args(base).float_ops == tflite.XNNPACK_FLOAT_OPS
    assert parse_args(base + ["--float_ops", "none"]).float_ops == ()
    assert parse_args(base + ["--float_ops", "GELU,SOFTMAX"]).float_ops == (
        "GELU",
        "SOFTMAX",
    )


@pytest.mark.slow  # converts the post-processing once more
def test_int8_file_maps_equal_the_float_post_processing_of_its_logits(
    demo_model, demo_export, test_images
):
    """model_int8.tflite joins the int8 network and the float
    post-processing: its maps equal the post-processing file converted on its
    own and run on the file's logits, bit for bit."""
    from ai_edge_litert.interpreter import Interpreter

    from remax_tf.export.saved_model import RAW_OUTPUT_KEYS
    from remax_tf.export.saved_model import build_serving_module

    config, model = demo_model
    module = build_serving_module(config, model)
    logits_function = module.fixed_size_logits_function((65, 65))
    post = module.fixed_size_postprocess_function((65, 65), logits_function)
    post_file = tflite._signed(tflite.convert_float(post, module), post)

    def runner(**source):
        return Interpreter(num_threads=2, **source).get_signature_runner()

    path = str(demo_export["tflite"]["model_int8.tflite"])
    outputs = runner(model_path=path)(image=test_images["crop"][None])
    maps = runner(model_content=post_file)(**{k: outputs[k] for k in RAW_OUTPUT_KEYS})
    assert sorted(maps) == sorted(MAP_KEYS)
    for key in MAP_KEYS:
        np.testing.assert_array_equal(outputs[key], maps[key], err_msg=key)
