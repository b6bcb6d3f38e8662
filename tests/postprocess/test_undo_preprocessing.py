"""Cropping the padding and resizing predictions back to the original size."""

import numpy as np
import tensorflow as tf

from remax_tf import common
from remax_tf.postprocess import undo_preprocessing
from remax_tf.postprocess import undo_resize_and_pad
from remax_tf.postprocess.undo_preprocessing import undo_is_identity


def test_crop_then_nearest_with_aligned_corners():
    padded = np.full((2, 6, 6), -1, np.int32)
    padded[:, :3, :3] = np.arange(9).reshape(3, 3)  # resized region 3x3
    padded[1, :3, :3] += 100
    out = undo_resize_and_pad(tf.constant(padded), (3, 3), (5, 5)).numpy()
    assert out.dtype == np.int32 and out.shape == (2, 5, 5)
    # align_corners: source = round(0.5 * target), halves rounded up.
    index = [0, 1, 1, 2, 2]
    expected = np.arange(9).reshape(3, 3)[np.ix_(index, index)]
    assert np.array_equal(out[0], expected)
    assert np.array_equal(out[1], expected + 100)
    # Same size: only the crop.
    crop = undo_resize_and_pad(tf.constant(padded), (3, 2), (3, 2)).numpy()
    assert np.array_equal(crop, padded[:, :3, :2])


def test_dict_version_resizes_maps_only():
    scores = tf.constant(np.random.default_rng(0).random((1, 6, 6, 1)), tf.float32)
    predictions = {
        common.PRED_PANOPTIC_KEY: tf.zeros((1, 6, 6), tf.int32),
        common.PRED_INSTANCE_SCORES_KEY: scores[..., 0],
        common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.zeros((1, 4, 3)),
    }
    out = undo_preprocessing(predictions, tf.constant([4, 5]), tf.constant([8, 10]))
    assert out[common.PRED_PANOPTIC_KEY].shape == (1, 8, 10)
    assert out[common.PRED_INSTANCE_SCORES_KEY].dtype == tf.float32
    assert (
        out[common.PRED_INSTANCE_SCORES_KEY].numpy()[0, -1, -1]
        == scores.numpy()[0, 3, 4, 0]
    )
    assert out[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY].shape == (1, 4, 3)
    channels = undo_resize_and_pad(scores, (4, 5), (8, 10))
    assert channels.shape == (1, 8, 10, 1)


def test_maps_undone_together_equal_maps_undone_one_by_one():
    """undo_preprocessing stacks maps of one dtype and shape into one resize;
    the result equals resizing each map on its own, bit for bit."""
    rng = np.random.default_rng(1)
    predictions = {
        common.PRED_PANOPTIC_KEY: tf.constant(rng.integers(0, 9999, (2, 9, 9))),
        common.PRED_SEMANTIC_KEY: tf.constant(rng.integers(0, 99, (2, 9, 9))),
        common.PRED_INSTANCE_KEY: tf.constant(rng.random((2, 9, 9)), tf.float32),
        common.PRED_INSTANCE_SCORES_KEY: tf.constant(rng.random((2, 9, 9)), tf.float32),
        common.PRED_SEMANTIC_SCORES_KEY: tf.constant(rng.random((2, 9, 9)), tf.float32),
    }
    for resized, original in (((7, 5), (13, 9)), ((9, 9), (9, 9)), ((4, 8), (3, 7))):
        out = undo_preprocessing(
            predictions, tf.constant(resized), tf.constant(original)
        )
        for key, value in predictions.items():
            want = undo_resize_and_pad(value, resized, original).numpy()
            got = out[key].numpy()
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), key


def test_undo_at_the_crop_size_is_skipped_only_when_provably_identity():
    maps = tf.constant(np.arange(2 * 5 * 7).reshape(2, 5, 7), tf.int32)
    same = tf.constant([5, 7])
    assert undo_is_identity(maps.shape[1:3], same, same)
    assert undo_resize_and_pad(maps, same, same) is maps
    assert not undo_is_identity(maps.shape[1:3], tf.constant([5, 6]), same)
    assert not undo_is_identity([None, 7], same, same)

    @tf.function(input_signature=[tf.TensorSpec([2], tf.int32)])
    def dynamic(size):
        # Sizes unknown while tracing: the resize stays in the graph.
        assert not undo_is_identity(maps.shape[1:3], size, size)
        return undo_resize_and_pad(maps, size, size)

    np.testing.assert_array_equal(dynamic(same).numpy(), maps.numpy())
    graph = dynamic.get_concrete_function().graph.as_graph_def()
    ops = {node.op for f in graph.library.function for node in f.node_def}
    assert "ResizeNearestNeighbor" in ops  # in the branch for other sizes

    @tf.function(input_signature=[])
    def static():
        return undo_resize_and_pad(maps, same, same)

    ops = {op.type for op in static.get_concrete_function().graph.get_operations()}
    assert "ResizeNearestNeighbor" not in ops


def test_sizes_known_only_at_run_time_skip_the_copy_when_equal():
    """The SavedModel's any-size signature: resized and original sizes are
    tensors; images at the crop size get the maps back unchanged, others
    are still cropped and resized."""
    maps = tf.constant(np.arange(2 * 9 * 9).reshape(2, 9, 9), tf.int32)

    @tf.function(
        input_signature=[tf.TensorSpec([2], tf.int32), tf.TensorSpec([2], tf.int32)]
    )
    def undo(resized, original):
        return undo_resize_and_pad(maps, resized, original)

    graph = undo.get_concrete_function().graph.as_graph_def()
    assert any(node.op in ("If", "StatelessIf") for node in graph.node)
    np.testing.assert_array_equal(undo([9, 9], [9, 9]).numpy(), maps.numpy())
    np.testing.assert_array_equal(undo([5, 7], [5, 7]).numpy(), maps.numpy()[:, :5, :7])
