"""TFLite conversion of the serving graph, with a quantisation switch.

Every file takes one uint8 image of a fixed size [1, H, W, 3] (the TFLite
graph is static: relative-position gathers and resizes fold into constants)
and uses TFLite builtin ops only, so it runs on the stock interpreters of
phones (no Flex delegate). Modes:

* ``none`` (fp32), ``fp16`` (float16 weights), ``dynamic`` (int8 weights,
  float activations): one file, ``model_<mode>.tflite``, holding the whole
  :meth:`ServingModule.serve`: evaluation preprocessing, model, mask-wise
  post-processing and the undo, with the SavedModel's output names.
* ``int8`` (full integer: int8 weights and activations, calibrated on a
  representative dataset of training images): one file too,
  ``model_int8.tflite``, assembled from two conversions: preprocessing and
  model quantised (outputs: the raw logits), post-processing and undo in
  float, joined into one flatbuffer (:func:`tflite_join.join_tflite`) whose
  outputs are the maps and the raw logits. Converted in one piece, the
  quantiser would still put some post-processing tensors in int8 despite a
  denylist, and older TFLite calibrators crashed on its loop
  (tensorflow/tensorflow#75140; docs/export.md).

Quantisation risk (docs/export.md, "Selective int8"): the k-means assignment
is a hard argmax, so the int8 mode can keep chosen parts of the model in float
(``float_scopes``: Keras name scopes such as ``kmax_transformer_decoder/``;
selective quantisation through TFLite's quantisation debugger). By default it
also keeps in float the op types XNNPACK cannot run in int8
(``XNNPACK_FLOAT_OPS``), so that the int8 network stays inside the delegate,
and always the op types whose int8 kernels are wrong (``INT8_WRONG_OPS``:
ONE_HOT, the k-means assignment).

Files carry a ``serving_default`` signature whose input is ``image`` and whose
outputs are named as in the SavedModel.
"""

from __future__ import annotations

from typing import Callable
from typing import Dict
from typing import Iterable
from typing import Optional
from typing import Sequence
import warnings

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from remax_tf import cli
from remax_tf.export.options import DEFAULT_CALIBRATION_STEPS
from remax_tf.export.options import DYNAMIC
from remax_tf.export.options import FP16
from remax_tf.export.options import INT8
from remax_tf.export.options import INT8_WRONG_OPS
from remax_tf.export.options import NONE
from remax_tf.export.options import QUANTIZE_MODES
from remax_tf.export.options import XNNPACK_FLOAT_OPS
from remax_tf.export.saved_model import ServingModule
from remax_tf.export.tflite_join import join_tflite
from remax_tf.export.tflite_join import signature_def
from remax_tf.export.tflite_join import text

# The post-processing file of int8 exports before the joined file (still
# read by the TFLite predictor, next to a model file that returns logits).
POSTPROCESS_FILE = "postprocess.tflite"
_FILE_SUFFIX = {NONE: "fp32", FP16: "fp16", DYNAMIC: "dynamic", INT8: "int8"}
# Selective int8: the kMaX transformer decoder (k-means cross-attention and
# its hard argmax assignment) and the prediction head stay in float
# (builder.py layer names).
FLOAT_DECODER_SCOPES = ("kmax_transformer_decoder/", "predictor/")

RepresentativeImages = Callable[[], Iterable[np.ndarray]]


def model_file_name(quantize: str) -> str:
    """``model_fp32.tflite``, ``model_fp16.tflite``, ..."""
    check_quantize(quantize)
    return f"model_{_FILE_SUFFIX[quantize]}.tflite"


def check_quantize(quantize: str) -> None:
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"unknown quantize mode {quantize!r}; known modes: "
            f"{', '.join(QUANTIZE_MODES)}."
        )


def _with_signature(
    content: bytes, input_names: Sequence[str], output_names: Sequence[str]
) -> bytes:
    """Adds a ``serving_default`` SignatureDef naming the subgraph's inputs and
    outputs (in the converted function's flattened order)."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    subgraph = model.subgraphs[0]
    if len(subgraph.inputs) != len(input_names) or len(subgraph.outputs) != len(
        output_names
    ):
        raise RuntimeError(
            f"converted model has {len(subgraph.inputs)} inputs and "
            f"{len(subgraph.outputs)} outputs; expected {list(input_names)} and "
            f"{list(output_names)}."
        )

    inputs = _inputs_by_name(subgraph, input_names)
    outputs = _outputs_in_flat_order(subgraph, len(output_names))
    model.signatureDefs = [
        signature_def(dict(zip(input_names, inputs)), dict(zip(output_names, outputs)))
    ]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _inputs_by_name(subgraph, input_names: Sequence[str]) -> list:
    """The subgraph's input tensor indices in the order of ``input_names``.
    The converter does not keep the function's argument order (a dict of two
    inputs came out reversed); it names each input tensor
    ``serving_default_<name>:0`` or ``<name>``, so match on that, and fall
    back to the position only when the names say nothing."""
    found = {}
    for index in subgraph.inputs:
        name = text(subgraph.tensors[index].name).split(":")[0]
        for candidate in (name, name[len("serving_default_") :]):
            if candidate in input_names:
                found[candidate] = index
    if len(found) == len(input_names) == len(subgraph.inputs):
        return [found[name] for name in input_names]
    return list(subgraph.inputs)


def _outputs_in_flat_order(subgraph, count: int) -> list:
    """The subgraph's output tensor indices in the function's flattened
    output order. The converter names output k ``PartitionedCall:k`` (or
    ``StatefulPartitionedCall:k``) but may list them in another order (two
    outputs came out reversed); fall back to the listed order when the names
    do not give every k once."""
    order = {}
    for index in subgraph.outputs:
        name = text(subgraph.tensors[index].name)
        suffix = name.rsplit(":", 1)[-1]
        if "PartitionedCall" in name and suffix.isdigit():
            order[int(suffix)] = index
    if sorted(order) == list(range(count)) == list(range(len(subgraph.outputs))):
        return [order[k] for k in range(count)]
    return list(subgraph.outputs)


def _flat_names(structure) -> list:
    """Dict keys in ``tf.nest`` flattening order (sorted)."""
    return [key for key, _ in sorted(structure.items())]


def _converter(concrete, module: ServingModule) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    # Freeze the function directly instead of round-tripping through a
    # temporary SavedModel: several times faster, the same ops; the signature
    # is written afterwards by _with_signature.
    converter.experimental_lower_to_saved_model = False
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _signed(content: bytes, concrete) -> bytes:
    """``content`` with the ``serving_default`` signature of ``concrete``."""
    inputs = [
        spec.name for spec in tf.nest.flatten(concrete.structured_input_signature)
    ]
    return _with_signature(content, inputs, _flat_names(concrete.structured_outputs))


def convert_float(concrete, module: ServingModule, quantize: str = NONE) -> bytes:
    """Flatbuffer of ``concrete`` (no signature) in a mode that keeps a float
    graph (``none``, ``fp16``, ``dynamic``), with the export's settings."""
    converter = _converter(concrete, module)
    configure = _FLOAT_GRAPH_OPTIONS[quantize]
    if configure is not None:
        configure(converter)
    with cli.native_logs_quieted():
        return converter.convert()


def _fp16_weights(converter: tf.lite.TFLiteConverter) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic_range(converter: tf.lite.TFLiteConverter) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


# Modes whose file holds the whole serving graph, and their converter options.
_FLOAT_GRAPH_OPTIONS = {NONE: None, FP16: _fp16_weights, DYNAMIC: _dynamic_range}


def _representative_dataset(
    images: RepresentativeImages, input_size: Sequence[int], steps: int
):
    height, width = (int(s) for s in input_size)

    def generator():
        count = 0
        for image in images():
            image = np.asarray(image)
            if image.shape != (height, width, 3) or image.dtype != np.uint8:
                raise ValueError(
                    f"representative images must be uint8 [{height}, {width}, 3] "
                    f"(the TFLite input size), got {image.dtype} {image.shape}."
                )
            yield [image[None]]
            count += 1
            if count >= steps:
                return
        if count == 0:
            raise ValueError("the representative dataset yielded no image.")

    return generator


def convert_to_tflite(
    module: ServingModule,
    input_size: Sequence[int],
    quantize: str = NONE,
    representative_images: Optional[RepresentativeImages] = None,
    calibration_steps: int = DEFAULT_CALIBRATION_STEPS,
    float_scopes: Sequence[str] = (),
    float_ops: Sequence[str] = XNNPACK_FLOAT_OPS,
) -> Dict[str, bytes]:
    """Converts ``module`` for a fixed input size.

    Args:
      module: The :class:`ServingModule`.
      input_size: (height, width) of the uint8 input image.
      quantize: One of ``QUANTIZE_MODES``.
      representative_images: ``int8`` only: a callable returning an iterable
        of uint8 [H, W, 3] training images at ``input_size``.
      calibration_steps: ``int8`` only: how many of them calibrate.
      float_scopes: ``int8`` only: ops whose output tensor name contains one
        of these strings stay in float (selective quantisation), e.g.
        ``FLOAT_DECODER_SCOPES``: the k-means path.
      float_ops: ``int8`` only: op types kept in float; default
        ``XNNPACK_FLOAT_OPS``, those XNNPACK cannot run in int8 (``()``
        quantises every op that has an int8 kernel).

    Returns:
      File name -> flatbuffer: ``{model_<mode>.tflite}``, one file.
    """
    check_quantize(quantize)
    check_float_ops(float_ops)
    if quantize != INT8 and (representative_images is not None or float_scopes):
        raise ValueError(
            "representative_images and float_scopes apply to quantize='int8' only."
        )
    name = model_file_name(quantize)
    if quantize in _FLOAT_GRAPH_OPTIONS:
        concrete = module.fixed_size_function(input_size)
        return {name: _signed(convert_float(concrete, module, quantize), concrete)}
    if representative_images is None:
        raise ValueError(
            "quantize='int8' needs representative_images (training images) to "
            "calibrate the activation ranges."
        )
    dataset = _representative_dataset(
        representative_images, input_size, calibration_steps
    )
    logits = module.fixed_size_logits_function(input_size)
    content = quantize_int8(logits, module, dataset, float_scopes, float_ops)
    post = module.fixed_size_postprocess_function(input_size, logits)
    return {
        name: join_tflite(
            _signed(content, logits), _signed(convert_float(post, module), post)
        )
    }


def _op_output_names(content: bytes) -> list:
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    names = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            for index in op.outputs:
                name = subgraph.tensors[index].name
                names.append(text(name))
    return names


def quantize_int8(
    concrete,
    module: ServingModule,
    dataset,
    float_scopes: Sequence[str] = (),
    float_ops: Sequence[str] = XNNPACK_FLOAT_OPS,
) -> bytes:
    """Full-integer flatbuffer of ``concrete`` (no signature), calibrated on
    ``dataset``: int8 kernels where they exist, float fallback for the rest.
    Ops whose output tensor name contains one of ``float_scopes``, ops of
    the types ``float_ops`` and, always, of the types ``INT8_WRONG_OPS``
    (ONE_HOT) stay float (TFLite's quantisation debugger's denylists)."""
    converter = _converter(concrete, module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    nodes = []
    if float_scopes:
        # Tensor names of the calibrated model are those of the float one.
        with cli.native_logs_quieted():
            names = _op_output_names(_converter(concrete, module).convert())
        nodes = [n for n in names if any(scope in n for scope in float_scopes)]
        if not nodes:
            raise ValueError(
                f"float_scopes {list(float_scopes)} match no op of the model; "
                "use Keras layer name scopes such as 'kmax_transformer_decoder/'."
            )
    with warnings.catch_warnings(), cli.native_logs_quieted():
        # The uint8 image input is cast to float inside the graph, so it has
        # no quantisation statistics by design.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        ops = list(float_ops) + [op for op in INT8_WRONG_OPS if op not in float_ops]
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=dataset,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=nodes or None, denylisted_ops=ops
            ),
        )
        return debugger.get_nondebug_quantized_model()


def check_float_ops(float_ops: Sequence[str]) -> None:
    """``float_ops`` must be TFLite builtin op names, e.g. ``GELU``."""
    known = set(_BUILTIN_OP_NAMES.values())
    unknown = [op for op in float_ops if op not in known]
    if unknown:
        raise ValueError(
            f"float_ops {unknown} are not TFLite builtin op names; use names "
            f"such as {', '.join(XNNPACK_FLOAT_OPS[:3])} (tflite.XNNPACK_FLOAT_OPS)."
        )


_BUILTIN_OP_NAMES = {
    value: key for key, value in vars(schema.BuiltinOperator).items() if key[0] != "_"
}


def op_type(model: schema.ModelT, op: schema.OperatorT) -> str:
    """The type name of ``op`` in ``model`` (e.g. ``CONV_2D``; custom and Flex
    ops as ``CUSTOM:<code>``)."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{text(code.customCode)}"
    return _BUILTIN_OP_NAMES.get(builtin, str(builtin))


def op_types(content: bytes) -> Dict[str, int]:
    """Op type -> count over all subgraphs of a TFLite flatbuffer (custom and
    Flex ops by their custom code)."""
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    counts: Dict[str, int] = {}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            name = op_type(model, op)
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


__all__ = [
    "DEFAULT_CALIBRATION_STEPS",
    "FLOAT_DECODER_SCOPES",
    "POSTPROCESS_FILE",
    "QUANTIZE_MODES",
    "XNNPACK_FLOAT_OPS",
    "INT8_WRONG_OPS",
    "check_float_ops",
    "check_quantize",
    "convert_float",
    "convert_to_tflite",
    "model_file_name",
    "op_type",
    "op_types",
    "quantize_int8",
]
