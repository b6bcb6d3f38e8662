"""The TensorFlow assignment solver against scipy (test-only oracle)."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa
import tensorflow as tf

from remax_tf.losses.hungarian import linear_sum_assignment

# Static problem shapes (rows, cols); the random masks make the effective
# sub-problems square, wide and tall. 200 matrices in all.
SHAPES = ((7, 10), (10, 7), (9, 9), (1, 6), (6, 1))
BATCH = 8
DRAWS = 5  # batches per shape: 5 shapes x 5 draws x 8 = 200 matrices


def _check_against_scipy(cost, row_mask, col_mask, assignment):
    for b in range(cost.shape[0]):
        rows = np.flatnonzero(row_mask[b])
        cols = np.flatnonzero(col_mask[b])
        got = assignment[b]
        # A valid partial permutation on the valid rows and columns only.
        assert set(np.unique(got)) <= {0.0, 1.0}
        assert (got.sum(axis=0) <= 1).all() and (got.sum(axis=1) <= 1).all()
        assert got[~row_mask[b]].sum() == 0 and got[:, ~col_mask[b]].sum() == 0
        assert got.sum() == min(len(rows), len(cols))
        if len(rows) and len(cols):
            sub = cost[b][np.ix_(rows, cols)]
            r, c = scipy_lsa(sub)
            # With ties the indices may differ: compare the total cost.
            np.testing.assert_allclose(
                (got * cost[b]).sum(), sub[r, c].sum(), rtol=1e-5, atol=1e-5
            )


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_scipy_on_random_and_tied_costs(shape):
    solve = tf.function(linear_sum_assignment)
    rng = np.random.default_rng(sum(shape))
    rows, cols = shape
    for draw in range(DRAWS):
        if draw % 2:
            # Few distinct values: many ties.
            cost = rng.integers(0, 3, size=(BATCH, rows, cols)).astype(np.float32)
        else:
            cost = rng.normal(size=(BATCH, rows, cols)).astype(np.float32)
        row_mask = rng.random((BATCH, rows)) < 0.75
        col_mask = rng.random((BATCH, cols)) < 0.75
        if draw == 0:
            row_mask[:] = True
            col_mask[:] = True
        got = solve(
            tf.constant(cost), tf.constant(row_mask), tf.constant(col_mask)
        ).numpy()
        _check_against_scipy(cost, row_mask, col_mask, got)


def test_without_masks_is_scipys_rectangular_assignment():
    rng = np.random.default_rng(7)
    cost = rng.normal(size=(3, 4, 6)).astype(np.float32)
    got = linear_sum_assignment(tf.constant(cost)).numpy()
    ones = np.ones((3, 4), bool), np.ones((3, 6), bool)
    _check_against_scipy(cost, *ones, got)
    got_t = linear_sum_assignment(tf.constant(cost.transpose(0, 2, 1))).numpy()
    np.testing.assert_array_equal(got_t, got.transpose(0, 2, 1))


def test_empty_problems_give_no_matches():
    cost = tf.random.normal((2, 3, 4))
    no_rows = tf.zeros((2, 3), tf.bool)
    assert float(tf.reduce_sum(linear_sum_assignment(cost, no_rows))) == 0.0
    no_cols = tf.zeros((2, 4), tf.bool)
    assert float(tf.reduce_sum(linear_sum_assignment(cost, None, no_cols))) == 0.0


def test_non_finite_costs_terminate_and_stay_a_matching():
    cost = tf.constant([[[np.nan, 1.0], [np.inf, 0.0]]], tf.float32)
    got = linear_sum_assignment(cost).numpy()[0]
    np.testing.assert_array_equal(got.sum(axis=0), [1, 1])
    np.testing.assert_array_equal(got.sum(axis=1), [1, 1])


def test_no_gradient_and_bad_rank():
    cost = tf.Variable(tf.random.normal((1, 3, 3)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(linear_sum_assignment(cost) * cost)
    # Only the explicit `* cost` carries gradient: the assignment itself.
    grad = tape.gradient(loss, cost)
    np.testing.assert_array_equal(grad.numpy(), linear_sum_assignment(cost).numpy())
    with pytest.raises(ValueError, match="batch, rows, cols"):
        linear_sum_assignment(tf.zeros((3, 3)))


def test_static_batch_of_one_traces_in_graph_mode():
    # One image per replica (MirroredStrategy with a global batch of two)
    # gives the solver a static batch dimension of 1 inside tf.function.
    rng = np.random.default_rng(11)
    cost = rng.normal(size=(1, 5, 7)).astype(np.float32)
    solve = tf.function(
        linear_sum_assignment,
        input_signature=[tf.TensorSpec([1, 5, 7], tf.float32)],
    )
    got = solve(tf.constant(cost)).numpy()
    _check_against_scipy(cost, np.ones((1, 5), bool), np.ones((1, 7), bool), got)
