"""Minimum-cost bipartite matching (the linear sum assignment) in TensorFlow.

A batched shortest-augmenting-path Hungarian algorithm (Kuhn-Munkres with
row/column potentials, the O(n^3) formulation popularised by Jonker and
Volgenant): rows are inserted one at a time, and each insertion runs a
Dijkstra-like search over reduced costs until it reaches a free column, then
flips the alternating path. Everything is fixed-shape tensor code inside
``tf.while_loop``, so it runs in graph mode on CPU, GPU and TPU without scipy.

DeepLab2 (model/loss/matchers_ops.py) solves only square problems and pads
non-square ones with +-999 constants, which costs float32 precision on the
real costs. Here validity masks are part of the problem instead: the solver
returns a maximum-cardinality matching between the valid rows and the valid
columns of minimum total cost, i.e. exactly what
``scipy.optimize.linear_sum_assignment`` returns on the valid sub-matrix.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

_INF = float("inf")


def _search_and_augment(
    cost: tf.Tensor, num_rows: tf.Tensor, col_allowed: tf.Tensor
) -> tf.Tensor:
    """Assigns rows 0..num_rows[b]-1 of each [N, N] problem to allowed columns.

    Requires num_rows[b] <= number of allowed columns of problem b.

    Args:
      cost: [B, N, N] float32, finite.
      num_rows: [B] int32, the rows to assign are the first num_rows[b].
      col_allowed: [B, N] bool, columns that may be used.

    Returns:
      [B, N] int32: the row assigned to each column, -1 for none.
    """
    # The static batch size when known: loop variables then keep one static
    # shape (a per-replica batch of 1 would otherwise enter as (1, n) and come
    # back as (None, n)).
    batch = cost.shape[0] if cost.shape[0] is not None else tf.shape(cost)[0]
    n = cost.shape[-1]
    virtual = n  # The extra column that roots every search tree.
    # Column arrays have n + 1 entries; the virtual column is never "allowed".
    allowed = tf.concat([col_allowed, tf.zeros([batch, 1], tf.bool)], axis=1)
    inf_row = tf.fill([batch, 1], _INF)

    def gather_b(values, index):
        return tf.gather(values, index, batch_dims=1)

    def set_at(values, index, new_value, where):
        hit = tf.logical_and(
            tf.one_hot(index, values.shape[-1], on_value=True, off_value=False),
            where[:, None],
        )
        return tf.where(hit, new_value[:, None], values)

    def insert_row(i, u, v, owner):
        active = i < num_rows
        owner = tf.concat([owner[:, :n], tf.fill([batch, 1], i)], axis=1)
        j0 = tf.fill([batch], virtual)
        minv = tf.fill([batch, n + 1], _INF)
        way = tf.fill([batch, n + 1], virtual)
        used = tf.zeros([batch, n + 1], tf.bool)
        used_rows = tf.zeros([batch, n], tf.bool)

        def search_step(running, j0, u, v, minv, way, used, used_rows):
            used = tf.logical_or(
                used,
                tf.logical_and(
                    tf.one_hot(j0, n + 1, on_value=True, off_value=False),
                    running[:, None],
                ),
            )
            i0 = gather_b(owner, j0)
            used_rows = tf.logical_or(
                used_rows,
                tf.logical_and(
                    tf.one_hot(i0, n, on_value=True, off_value=False),
                    running[:, None],
                ),
            )
            safe_i0 = tf.maximum(i0, 0)
            # Reduced costs of row i0 against every column.
            reduced = gather_b(cost, safe_i0) - gather_b(u, safe_i0)[:, None] - v[:, :n]
            reduced = tf.concat([reduced, inf_row], axis=1)
            candidate = tf.logical_and(allowed, tf.logical_not(used))
            better = tf.logical_and(
                tf.logical_and(candidate, reduced < minv), running[:, None]
            )
            minv = tf.where(better, reduced, minv)
            way = tf.where(better, j0[:, None], way)
            slack = tf.where(candidate, minv, _INF)
            j1 = tf.argmin(slack, axis=1, output_type=tf.int32)
            delta = tf.where(running, tf.reduce_min(slack, axis=1), 0.0)
            # Keep the reduced costs of tree edges at zero while the tree grows.
            u = u + tf.where(used_rows, delta[:, None], 0.0)
            v = v - tf.where(used, delta[:, None], 0.0)
            minv = tf.where(candidate, minv - delta[:, None], minv)
            j0 = tf.where(running, j1, j0)
            # A search stops at a free column.
            running = tf.logical_and(running, gather_b(owner, j0) >= 0)
            return running, j0, u, v, minv, way, used, used_rows

        _, j0, u, v, _, way, _, _ = tf.while_loop(
            lambda running, *_: tf.reduce_any(running),
            search_step,
            (active, j0, u, v, minv, way, used, used_rows),
            maximum_iterations=n + 1,
        )

        def augment_step(j0, owner):
            moving = tf.logical_and(active, tf.not_equal(j0, virtual))
            j1 = gather_b(way, j0)
            owner = set_at(owner, j0, gather_b(owner, j1), moving)
            return tf.where(moving, j1, j0), owner

        _, owner = tf.while_loop(
            lambda j0, owner: tf.reduce_any(
                tf.logical_and(active, tf.not_equal(j0, virtual))
            ),
            augment_step,
            (j0, owner),
            maximum_iterations=n + 1,
        )
        return i + 1, u, v, owner

    u = tf.zeros([batch, n])
    v = tf.zeros([batch, n + 1])
    owner = tf.fill([batch, n + 1], -1)
    _, _, _, owner = tf.while_loop(
        lambda i, *_: i < tf.reduce_max(num_rows),
        insert_row,
        (tf.constant(0), u, v, owner),
    )
    return owner[:, :n]


def linear_sum_assignment(
    cost: tf.Tensor,
    row_mask: Optional[tf.Tensor] = None,
    col_mask: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """Minimum-cost maximum-cardinality matching, batched.

    Rows and columns outside their masks take no part: the result matches
    min(#valid rows, #valid columns) pairs of valid rows and columns with the
    least total cost (scipy's ``linear_sum_assignment`` on the valid
    sub-matrix). No gradient flows through the result.

    Args:
      cost: [B, R, C] float tensor (static R and C). Non-finite entries are
        treated as 0 so that the search always terminates; a NaN in the cost
        still reaches the losses through the predictions themselves.
      row_mask: Optional [B, R] bool, valid rows (default: all).
      col_mask: Optional [B, C] bool, valid columns (default: all).

    Returns:
      [B, R, C] float32 with 0/1 entries; each row and column holds at most
      one 1; invalid rows and columns are all zero.
    """
    if cost.shape.rank != 3 or cost.shape[1] is None or cost.shape[2] is None:
        raise ValueError(
            f"linear_sum_assignment: cost must be [batch, rows, cols] with static "
            f"rows and cols, got shape {cost.shape}."
        )
    cost = tf.stop_gradient(tf.cast(cost, tf.float32))
    cost = tf.where(tf.math.is_finite(cost), cost, tf.zeros_like(cost))
    batch = tf.shape(cost)[0]
    rows, cols = cost.shape[1], cost.shape[2]
    n = max(rows, cols)
    if row_mask is None:
        row_mask = tf.ones([batch, rows], tf.bool)
    if col_mask is None:
        col_mask = tf.ones([batch, cols], tf.bool)
    row_mask = tf.cast(row_mask, tf.bool)
    col_mask = tf.cast(col_mask, tf.bool)

    # Square problem with padded rows/columns marked invalid.
    cost = tf.pad(cost, [[0, 0], [0, n - rows], [0, n - cols]])
    row_mask = tf.pad(row_mask, [[0, 0], [0, n - rows]])
    col_mask = tf.pad(col_mask, [[0, 0], [0, n - cols]])

    # The search inserts rows, so the side with fewer valid entries must be
    # the rows: transpose the problems that have more valid rows than columns.
    num_rows = tf.reduce_sum(tf.cast(row_mask, tf.int32), axis=1)
    num_cols = tf.reduce_sum(tf.cast(col_mask, tf.int32), axis=1)
    flip = num_rows > num_cols
    flip_3d = flip[:, None, None]
    cost = tf.where(flip_3d, tf.transpose(cost, [0, 2, 1]), cost)
    row_mask, col_mask = (
        tf.where(flip[:, None], col_mask, row_mask),
        tf.where(flip[:, None], row_mask, col_mask),
    )

    # Valid rows first (stable), so that the row loop stops after the largest
    # number of valid rows in the batch instead of visiting every padded row.
    order = tf.argsort(tf.cast(tf.logical_not(row_mask), tf.int32), axis=1, stable=True)
    cost = tf.gather(cost, order, batch_dims=1)
    owner = _search_and_augment(cost, tf.minimum(num_rows, num_cols), col_mask)

    # owner[b, j] is a position in `order`; map back to the original rows.
    assigned = owner >= 0
    original_row = tf.gather(order, tf.maximum(owner, 0), batch_dims=1)
    original_row = tf.where(assigned, original_row, -1)
    assignment = tf.transpose(
        tf.one_hot(original_row, n, dtype=tf.float32), [0, 2, 1]
    )  # [B, rows, cols]
    assignment = tf.where(flip_3d, tf.transpose(assignment, [0, 2, 1]), assignment)
    return tf.stop_gradient(assignment[:, :rows, :cols])
