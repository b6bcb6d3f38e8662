"""evaluator_options.post_processing_resolution: "input" (exact) vs "model_output".

"model_output" is a documented approximation: the mask-wise (or pixel-wise)
decisions are taken at the logits' resolution and the maps upsampled by
nearest neighbour. These tests pin what it is exactly: the "input" rule run at
the logits' size, then upsampled.
"""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.config.validation import validate_config
from remax_tf.postprocess.post_processor import PanopticPostProcessor
from remax_tf.postprocess.post_processor import build_post_processor
from remax_tf.postprocess.slot_predictions import upsample_nearest
from remax_tf.postprocess.undo_preprocessing import MAP_KEYS
from remax_tf.protos import config_pb2
from remax_tf.protos import evaluator_pb2

CLASS_IDS = [1, 2, 3, 4, 5]  # three things, two stuff
NUM_THINGS = 3


def _logits(seed: int, size: int = 17, slots: int = 16):
    rng = np.random.default_rng(seed)
    mask = tf.constant(rng.normal(size=(2, size, size, slots)) * 4, tf.float32)
    cls = tf.constant(rng.normal(size=(2, slots, len(CLASS_IDS) + 1)) * 4, tf.float32)
    return {
        common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: mask,
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: cls,
    }


def _processor(output_size, resolution, method="maskwise", **kwargs):
    return PanopticPostProcessor(
        CLASS_IDS,
        NUM_THINGS,
        ignore_label=0,
        label_divisor=1000,
        output_size=output_size,
        method=method,
        resolution=resolution,
        thing_threshold=0.3,
        stuff_threshold=0.3,
        class_threshold=0.3,
        **kwargs,
    )


@pytest.mark.parametrize("size", [(65, 65), (50, 61), (17, 17)])
def test_upsample_nearest_equals_tensorflow_nearest_resize(size):
    maps = tf.constant(np.random.default_rng(0).integers(0, 99, (2, 17, 17)), tf.int32)
    expected = tf.raw_ops.ResizeNearestNeighbor(
        images=tf.cast(maps, tf.float32)[..., None],
        size=list(size),
        align_corners=True,
        half_pixel_centers=False,
    )[..., 0]
    got = upsample_nearest(maps, size)
    assert got.dtype == tf.int32
    np.testing.assert_array_equal(got.numpy(), expected.numpy().astype(np.int32))
    flags = upsample_nearest(maps > 50, size)
    assert flags.dtype == tf.bool
    np.testing.assert_array_equal(flags.numpy(), expected.numpy() > 50)


@pytest.mark.parametrize("method", ["maskwise", "pixelwise"])
def test_model_output_is_the_exact_rule_at_logit_size_then_upsampled(method):
    inputs = _logits(seed=1)
    small = _processor((17, 17), "input", method)(inputs)
    approx = _processor((65, 65), "model_output", method)(inputs)
    for key in MAP_KEYS:
        np.testing.assert_array_equal(
            approx[key].numpy(), upsample_nearest(small[key], (65, 65)).numpy(), key
        )
    exact = _processor((65, 65), "input", method)(inputs)
    # It is an approximation: the full-resolution rule differs somewhere.
    assert not np.array_equal(
        exact[common.PRED_PANOPTIC_KEY].numpy(),
        approx[common.PRED_PANOPTIC_KEY].numpy(),
    )


def test_same_size_output_makes_both_resolutions_equal():
    inputs = _logits(seed=2)
    exact = _processor((17, 17), "input")(inputs)
    approx = _processor((17, 17), "model_output")(inputs)
    for key in MAP_KEYS:
        np.testing.assert_array_equal(exact[key].numpy(), approx[key].numpy(), key)


def test_area_limits_count_output_pixels():
    inputs = _logits(seed=3)
    unlimited = _processor((65, 65), "model_output")(inputs)[common.PRED_PANOPTIC_KEY]
    ids, counts = np.unique(unlimited.numpy()[0], return_counts=True)
    thing_ids = [(i, c) for i, c in zip(ids, counts) if 0 < i // 1000 <= NUM_THINGS]
    assert thing_ids, "the random logits should paste at least one thing"
    smallest_id, smallest = min(thing_ids, key=lambda t: t[1])
    limited = _processor((65, 65), "model_output", thing_area_limit=int(smallest) + 1)(
        inputs
    )[common.PRED_PANOPTIC_KEY].numpy()[0]
    assert not np.any(limited == smallest_id)
    assert np.all(limited[unlimited.numpy()[0] == smallest_id] == 0)


def test_built_from_evaluator_options_and_kept_in_config():
    options = evaluator_pb2.EvaluatorOptions(
        transformer_post_processing="maskwise",
        post_processing_resolution="model_output",
    )

    class _Descriptor:
        thing_stuff_class_ids = CLASS_IDS
        thing_class_ids = CLASS_IDS[:NUM_THINGS]
        ignore_label = 0
        panoptic_label_divisor = 1000

    layer = build_post_processor(options, _Descriptor(), (65, 65))
    assert layer.resolution == "model_output"
    clone = PanopticPostProcessor.from_config(layer.get_config())
    assert clone.resolution == "model_output"
    assert evaluator_pb2.EvaluatorOptions().post_processing_resolution == "input"


def test_unknown_resolution_is_named():
    with pytest.raises(ValueError, match="post_processing_resolution 'stride4'"):
        _processor((65, 65), "stride4")
    config = config_pb2.ExperimentOptions()
    config.evaluator_options.post_processing_resolution = "stride4"
    with pytest.raises(Exception, match="post_processing_resolution = 'stride4'"):
        validate_config(config)


@pytest.mark.parametrize("output_size", [(65, 65), (50, 61)])
def test_merge_on_the_logit_grid_equals_merging_the_upsampled_assignment(output_size):
    """ "model_output" merges before upsampling, counting areas in output
    pixels (nearest_pixel_weights); the maps must equal those of upsampling
    the assignment first and merging at the output size (its implementation
    before), with area limits that drop some segments."""
    from remax_tf.postprocess.maskwise import maskwise_assignment
    from remax_tf.postprocess.panoptic_merge import SlotAssignment
    from remax_tf.postprocess.panoptic_merge import merge_to_panoptic

    inputs = _logits(seed=4)
    limits = dict(thing_area_limit=150, stuff_area_limit=400)
    layer = _processor(output_size, "model_output", **limits)
    got = layer(inputs)
    mask = inputs[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY]
    assignment = maskwise_assignment(
        mask,
        mask,
        inputs[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY],
        num_thing_classes=NUM_THINGS,
        pixel_confidence_threshold=layer.pixel_confidence_threshold,
        thing_threshold=layer.thing_threshold,
        stuff_threshold=layer.stuff_threshold,
        overlapping_threshold=layer.overlapping_threshold,
        reorder_class_weight=layer.reorder_class_weight,
        reorder_mask_weight=layer.reorder_mask_weight,
    )
    upsampled = SlotAssignment(*(upsample_nearest(m, output_size) for m in assignment))
    expected = merge_to_panoptic(
        upsampled,
        CLASS_IDS,
        num_thing_classes=NUM_THINGS,
        ignore_label=0,
        label_divisor=1000,
        num_mask_slots=int(mask.shape[-1]),
        **limits,
    ).numpy()
    np.testing.assert_array_equal(got[common.PRED_PANOPTIC_KEY].numpy(), expected)
    np.testing.assert_array_equal(
        got[common.PRED_INSTANCE_KEY].numpy(), upsampled.mask_id_plus_one.numpy()
    )
    # The limits bite: some pasted pixels end up void, some segments stay.
    unlimited = _processor(output_size, "model_output")(inputs)
    dropped = expected != unlimited[common.PRED_PANOPTIC_KEY].numpy()
    assert dropped.any() and (expected // 1000 > 0).any()


def test_maps_upsampled_together_equal_each_upsampled_alone():
    from remax_tf.postprocess.slot_predictions import upsample_nearest_maps

    rng = np.random.default_rng(5)
    maps = {
        "a": tf.constant(rng.integers(0, 99, (2, 17, 17)), tf.int32),
        "b": tf.constant(rng.random((2, 17, 17)), tf.float32),
        "c": tf.constant(rng.integers(0, 99, (2, 17, 17)), tf.int32),
        "d": tf.constant(rng.random((2, 17, 17)) > 0.5),
    }
    together = upsample_nearest_maps(maps, (50, 61))
    assert list(together) == list(maps)
    for key, value in maps.items():
        alone = upsample_nearest(value, (50, 61))
        assert together[key].dtype == value.dtype
        np.testing.assert_array_equal(together[key].numpy(), alone.numpy(), key)
