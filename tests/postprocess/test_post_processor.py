"""The post-processing layer: outputs, graph mode, config, builder, TFLite ops."""

import warnings

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.postprocess import PanopticPostProcessor
from remax_tf.postprocess import build_post_processor
from remax_tf.protos import evaluator_pb2

BATCH, LOGIT_SIZE, SLOTS = 2, 9, 6
OUTPUT = (LOGIT_SIZE - 1) * 4 + 1  # 33: stride 4, corners aligned


@pytest.fixture(scope="module")
def descriptor():
    return get_dataset_descriptor("shapes_panoptic")


def _layer(descriptor, method, **kwargs):
    settings = dict(
        thing_threshold=0.6,
        stuff_threshold=0.4,
        class_threshold=0.5,
        overlapping_threshold=0.7,
        reorder_mask_weight=1.0,
        thing_area_limit=12,
        stuff_area_limit=30,
    )
    settings.update(kwargs)
    return PanopticPostProcessor(
        descriptor.thing_stuff_class_ids,
        len(descriptor.thing_class_ids),
        descriptor.ignore_label,
        descriptor.panoptic_label_divisor,
        (OUTPUT, OUTPUT),
        method=method,
        **settings,
    )


def _inputs(descriptor, seed=0):
    rng = np.random.default_rng(seed)
    return {
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.constant(
            rng.normal(size=(BATCH, LOGIT_SIZE, LOGIT_SIZE, SLOTS)) * 4, tf.float32
        ),
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.constant(
            rng.normal(size=(BATCH, SLOTS, descriptor.num_class_head_outputs)) * 4,
            tf.float32,
        ),
    }


def _signature(descriptor):
    return [
        {
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.TensorSpec(
                [BATCH, LOGIT_SIZE, LOGIT_SIZE, SLOTS], tf.float32
            ),
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.TensorSpec(
                [BATCH, SLOTS, descriptor.num_class_head_outputs], tf.float32
            ),
        }
    ]


@pytest.mark.parametrize("method", ["maskwise", "pixelwise"])
def test_graph_and_eager_agree(descriptor, method):
    layer = _layer(descriptor, method)
    graph_fn = tf.function(layer.call, input_signature=_signature(descriptor))
    for seed in range(3):
        inputs = _inputs(descriptor, seed)
        eager = layer(inputs)
        graph = graph_fn(inputs)
        assert set(eager) == {
            common.PRED_PANOPTIC_KEY,
            common.PRED_SEMANTIC_KEY,
            common.PRED_INSTANCE_KEY,
            common.PRED_INSTANCE_SCORES_KEY,
            common.PRED_SEMANTIC_SCORES_KEY,
        }
        for key, value in eager.items():
            assert value.shape == (BATCH, OUTPUT, OUTPUT), key
            assert np.array_equal(value.numpy(), graph[key].numpy()), key
        panoptic = eager[common.PRED_PANOPTIC_KEY].numpy()
        semantic_ids = set(np.unique(panoptic // 256).tolist())
        assert semantic_ids <= {0, *descriptor.thing_stuff_class_ids}
        # Stuff segments have instance 0, things the slot id (1..NQ).
        things = np.isin(panoptic // 256, descriptor.thing_class_ids)
        assert (panoptic[~things] % 256 == 0).all()
        assert ((panoptic[things] % 256 >= 1) & (panoptic[things] % 256 <= SLOTS)).all()
        assert eager[common.PRED_PANOPTIC_KEY].dtype == tf.int32


def test_area_limits_hold_on_random_outputs(descriptor):
    outputs = _layer(descriptor, "maskwise")(_inputs(descriptor, 5))
    for panoptic in outputs[common.PRED_PANOPTIC_KEY].numpy():
        values, counts = np.unique(panoptic, return_counts=True)
        for value, count in zip(values, counts):
            if value // 256 == 0:
                continue
            limit = 12 if value // 256 in descriptor.thing_class_ids else 30
            assert count >= limit, (value, count)


def test_config_with_the_old_void_label_key_loads(descriptor):
    layer = _layer(descriptor, "maskwise")
    config = layer.get_config()
    legacy = dict(config)
    legacy["void_label"] = legacy.pop("ignore_label")
    assert PanopticPostProcessor.from_config(legacy).get_config() == config


def test_config_round_trip(descriptor):
    layer = _layer(descriptor, "maskwise")
    config = layer.get_config()
    clone = PanopticPostProcessor.from_config(config)
    assert clone.get_config() == config
    restored = tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))
    inputs = _inputs(descriptor, 1)
    for key, value in layer(inputs).items():
        assert np.array_equal(value.numpy(), restored(inputs)[key].numpy())


def test_builder_reads_evaluator_options(descriptor):
    options = text_format.Parse(
        """
        thing_area_limit: 400
        stuff_area_limit: 6400
        transformer_post_processing: "maskwise"
        pixel_confidence_threshold: 0.4
        maskwise_postprocessing {
          transformer_class_confidence_threshold_thing: 0.7
          transformer_class_confidence_threshold_stuff: 0.5
          overlapping_threshold: 0.8
          reorder_class_weight: 1.0
          reorder_mask_weight: 1.0
        }
        """,
        evaluator_pb2.EvaluatorOptions(),
    )
    layer = build_post_processor(options, descriptor, (OUTPUT, OUTPUT))
    assert layer.method == "maskwise"
    assert (layer.thing_area_limit, layer.stuff_area_limit) == (400, 6400)
    assert layer.thing_threshold == pytest.approx(0.7)
    assert layer.stuff_threshold == pytest.approx(0.5)
    assert layer.overlapping_threshold == pytest.approx(0.8)
    assert layer.reorder_mask_weight == 1.0
    assert layer.num_thing_classes == 4
    # Without a maskwise message DeepLab2's proto defaults apply.
    defaults = build_post_processor(
        evaluator_pb2.EvaluatorOptions(), descriptor, (OUTPUT, OUTPUT)
    )
    assert defaults.method == "pixelwise"
    assert defaults.overlapping_threshold == pytest.approx(0.5)
    assert defaults.reorder_mask_weight == 0.0


def test_bad_settings_raise(descriptor):
    with pytest.raises(ValueError, match="known methods: pixelwise, maskwise"):
        _layer(descriptor, "panoptic_deeplab")
    with pytest.raises(ValueError, match="overlapping_threshold = 1.5"):
        _layer(descriptor, "maskwise", overlapping_threshold=1.5)
    layer = _layer(descriptor, "maskwise")
    inputs = _inputs(descriptor)
    inputs[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY] = inputs[
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY
    ][..., :-1]
    with pytest.raises(ValueError, match="the dataset needs 8"):
        layer(inputs)
    small_divisor = PanopticPostProcessor(
        descriptor.thing_stuff_class_ids, 4, 0, 4, (OUTPUT, OUTPUT)
    )
    with pytest.raises(ValueError, match="label divisor 4"):
        small_divisor(_inputs(descriptor))


@pytest.mark.parametrize("resolution", ["input", "model_output"])
def test_converts_to_tflite_with_builtin_ops_only(descriptor, resolution):
    """No DenseBincount: the graph converts without Select-TF ops (docs/export.md)."""
    layer = _layer(descriptor, "maskwise", resolution=resolution)
    graph_fn = tf.function(layer.call, input_signature=_signature(descriptor))
    concrete = graph_fn.get_concrete_function()
    op_types = {op.type for op in concrete.graph.get_operations()}
    assert not any("Bincount" in t for t in op_types)
    assert "UnsortedSegmentSum" in op_types
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], graph_fn)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=model)
    interpreter.allocate_tensors()
    inputs = _inputs(descriptor, 2)
    for detail in interpreter.get_input_details():
        key = (
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY
            if len(detail["shape"]) == 4
            else common.PRED_TRANSFORMER_CLASS_LOGITS_KEY
        )
        interpreter.set_tensor(detail["index"], inputs[key].numpy())
    interpreter.invoke()
    lite_outputs = [
        interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
    ]
    expected = graph_fn(inputs)[common.PRED_PANOPTIC_KEY].numpy()
    assert any(
        out.dtype == np.int32 and np.array_equal(out, expected) for out in lite_outputs
    )
