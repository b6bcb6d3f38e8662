"""One TFLite file from two converted ones: a graph, then a graph that eats
its outputs.

TFLite's calibrator crashed on the mask-wise post-processing loop of earlier
versions (docs/export.md), and converting the whole serving graph in one
piece with the post-processing denylisted still quantises some
post-processing tensors. So
the int8 export converts the network (int8) and the post-processing (float)
separately and joins the two flatbuffers: the second graph's operators are
appended to the first's main subgraph, reading the first's outputs where the
second read its inputs (matched by signature name); its loop bodies become
extra subgraphs; buffers and operator codes are merged. The joined file runs
the same kernels on the same tensors as the two files one after the other,
so its outputs are the same.
"""

from __future__ import annotations

from typing import Dict

from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from remax_tf.export.saved_model import SERVING_DEFAULT


def text(value) -> str:
    """A flatbuffer string field (bytes once parsed) as ``str``."""
    return value.decode() if isinstance(value, bytes) else value


def _signature(model, what: str):
    for signature in model.signatureDefs or []:
        if text(signature.signatureKey) == SERVING_DEFAULT:
            return signature
    raise ValueError(f"{what} has no '{SERVING_DEFAULT}' signature to join on.")


def _names(tensor_maps) -> Dict[str, int]:
    return {text(m.name): m.tensorIndex for m in tensor_maps}


def _code_key(code) -> tuple:
    return (code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version)


def _renumber_subgraph_options(op, subgraph_index) -> None:
    options = op.builtinOptions
    if isinstance(options, schema.WhileOptionsT):
        options.condSubgraphIndex = subgraph_index(options.condSubgraphIndex)
        options.bodySubgraphIndex = subgraph_index(options.bodySubgraphIndex)
    elif isinstance(options, schema.IfOptionsT):
        options.thenSubgraphIndex = subgraph_index(options.thenSubgraphIndex)
        options.elseSubgraphIndex = subgraph_index(options.elseSubgraphIndex)
    elif isinstance(options, schema.CallOnceOptionsT):
        options.initSubgraphIndex = subgraph_index(options.initSubgraphIndex)


def _check_feeds(main, tail_main, head_outputs, tail_inputs) -> None:
    missing = sorted(set(tail_inputs) - set(head_outputs))
    if missing:
        raise ValueError(
            f"the second file's inputs {missing} are not outputs of the first "
            f"(it has {sorted(head_outputs)})."
        )
    for name, index in tail_inputs.items():
        want, got = tail_main.tensors[index], main.tensors[head_outputs[name]]
        if want.type != got.type or list(want.shape) != list(got.shape):
            raise ValueError(
                f"'{name}': the first file gives type {got.type} shape "
                f"{[int(d) for d in got.shape]}, the second reads type "
                f"{want.type} shape {[int(d) for d in want.shape]}."
            )


def _move_tables(head, tail) -> None:
    """Appends ``tail``'s buffers, operator codes (shared where identical)
    and non-main subgraphs to ``head`` and renumbers ``tail``'s references to
    them, its main subgraph's included."""
    buffer_offset = len(head.buffers)
    head.buffers.extend(tail.buffers)  # its empty buffer 0 included
    codes = {_code_key(code): i for i, code in enumerate(head.operatorCodes)}
    code_index = []
    for code in tail.operatorCodes:
        if _code_key(code) not in codes:
            codes[_code_key(code)] = len(head.operatorCodes)
            head.operatorCodes.append(code)
        code_index.append(codes[_code_key(code)])
    subgraph_offset = len(head.subgraphs) - 1

    def subgraph_index(index: int) -> int:
        if index == 0:
            raise ValueError("the second file's ops call its main subgraph.")
        return index + subgraph_offset

    for subgraph in tail.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer += buffer_offset
        for op in subgraph.operators:
            op.opcodeIndex = code_index[op.opcodeIndex]
            _renumber_subgraph_options(op, subgraph_index)
    head.subgraphs.extend(tail.subgraphs[1:])


def signature_def(inputs: Dict[str, int], outputs: Dict[str, int]):
    """The ``serving_default`` SignatureDef of subgraph 0 naming these tensor
    indices, in this order."""

    def tensor_maps(names: Dict[str, int]) -> list:
        maps = []
        for name, index in names.items():
            entry = schema.TensorMapT()
            entry.name = name
            entry.tensorIndex = int(index)
            maps.append(entry)
        return maps

    signature = schema.SignatureDefT()
    signature.signatureKey = SERVING_DEFAULT
    signature.subgraphIndex = 0
    signature.inputs = tensor_maps(inputs)
    signature.outputs = tensor_maps(outputs)
    return signature


def join_tflite(first: bytes, second: bytes) -> bytes:
    """The file that runs ``first`` and feeds its outputs to ``second``.

    Every input of ``second``'s ``serving_default`` signature must be an
    output of ``first``'s with the same name, dtype and shape. The joined
    signature takes ``first``'s inputs and returns ``first``'s outputs and
    ``second``'s (e.g. the logits and the maps).
    """
    head = flatbuffer_utils.convert_bytearray_to_object(bytearray(first))
    tail = flatbuffer_utils.convert_bytearray_to_object(bytearray(second))
    head_signature = _signature(head, "the first file")
    tail_signature = _signature(tail, "the second file")
    head_outputs = _names(head_signature.outputs)
    tail_inputs = _names(tail_signature.inputs)
    tail_outputs = _names(tail_signature.outputs)
    main, tail_main = head.subgraphs[0], tail.subgraphs[0]
    _check_feeds(main, tail_main, head_outputs, tail_inputs)
    clash = sorted(set(tail_outputs) & set(head_outputs))
    if clash:
        raise ValueError(f"both files output {clash}.")
    _move_tables(head, tail)

    # The second's main subgraph continues the first's: its tensors follow
    # the first's, its inputs are the first's outputs of the same name.
    tensor_offset = len(main.tensors)
    fed = {index: head_outputs[name] for name, index in tail_inputs.items()}

    def tensor_index(index: int) -> int:
        if index < 0:  # an omitted optional input
            return index
        return fed.get(index, index + tensor_offset)

    main.tensors.extend(tail_main.tensors)
    for op in tail_main.operators:
        op.inputs = [tensor_index(i) for i in op.inputs]
        op.outputs = [tensor_index(i) for i in op.outputs]
        if op.intermediates is not None:
            op.intermediates = [tensor_index(i) for i in op.intermediates]
        main.operators.append(op)
    outputs = {**head_outputs, **{k: tensor_index(v) for k, v in tail_outputs.items()}}
    main.outputs = list(outputs.values())
    head.signatureDefs = [signature_def(_names(head_signature.inputs), outputs)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(head))
