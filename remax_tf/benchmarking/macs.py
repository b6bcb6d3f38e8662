"""Multiply-accumulates of a traced graph, per top-level name scope.

Every Conv2D, DepthwiseConv2dNative, MatMul, BatchMatMul and Einsum op
contributes the product of its output size and its contraction size, read
from the static shapes (an Einsum: the product of the sizes of all its
indices). Normalisation, activations, softmax, resizes and additions are not
counted: this is the paper's "FLOPs" (multiply-adds). Used by
``benchmarks/model_stats.py``.
"""

from __future__ import annotations

import collections
from typing import Dict

import numpy as np
import tensorflow as tf

COUNTED_OPS = (
    "Conv2D",
    "DepthwiseConv2dNative",
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Einsum",
)


def _shape(tensor: tf.Tensor) -> list:
    shape = tensor.shape.as_list()
    if any(d is None for d in shape):
        raise ValueError(
            f"op input/output {tensor.name} has a dynamic shape {shape}; trace the "
            "model with a fully defined input signature."
        )
    return shape


def _einsum_macs(op: tf.Operation) -> int:
    equation = op.get_attr("equation").decode()
    operands = equation.split("->")[0].split(",")
    sizes: Dict[str, int] = {}
    for letters, tensor in zip(operands, op.inputs):
        shape = _shape(tensor)
        if "." in letters or len(letters) != len(shape):
            raise ValueError(f"unsupported einsum {equation!r} in {op.name}")
        sizes.update(zip(letters, shape))
    return int(np.prod(list(sizes.values())))


def op_macs(op: tf.Operation) -> int:
    """Multiply-accumulates of one op (0 for ops that are not counted)."""
    kind = op.type
    if kind == "Conv2D":
        kernel = _shape(op.inputs[1])
        return int(np.prod(_shape(op.outputs[0]))) * int(np.prod(kernel[:3]))
    if kind == "DepthwiseConv2dNative":
        kh, kw = _shape(op.inputs[1])[:2]
        return int(np.prod(_shape(op.outputs[0]))) * kh * kw
    if kind == "MatMul":
        a = _shape(op.inputs[0])
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        return int(np.prod(_shape(op.outputs[0]))) * inner
    if kind.startswith("BatchMatMul"):
        a = _shape(op.inputs[0])
        inner = a[-2] if op.get_attr("adj_x") else a[-1]
        return int(np.prod(_shape(op.outputs[0]))) * inner
    if kind == "Einsum":
        return _einsum_macs(op)
    return 0


def count_macs(graph: tf.Graph, root_scope: str) -> Dict[str, int]:
    """MACs per top-level component (name scope below ``root_scope``); ops
    outside ``root_scope`` count as ``"other"``."""
    per_component: Dict[str, int] = collections.Counter()
    for op in graph.get_operations():
        if op.type not in COUNTED_OPS:
            continue
        macs = op_macs(op)
        parts = op.name.split("/")
        component = parts[1] if len(parts) > 2 and parts[0] == root_scope else "other"
        per_component[component] += macs
    return dict(per_component)
