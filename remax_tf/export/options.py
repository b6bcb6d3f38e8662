"""Export choices, importable without TensorFlow (``remax-export --help``)."""

SAVED_MODEL = "saved_model"
TFLITE = "tflite"
FORMATS = (SAVED_MODEL, TFLITE)

NONE = "none"
FP16 = "fp16"
DYNAMIC = "dynamic"
INT8 = "int8"
QUANTIZE_MODES = (NONE, FP16, DYNAMIC, INT8)
# Default number of representative images for int8 calibration (TFLite's
# post-training quantisation guide suggests a few hundred; shapes are small).
DEFAULT_CALIBRATION_STEPS = 100

# Op types that XNNPACK (the CPU delegate of the stock TFLite interpreters:
# TensorFlow 2.20's and ai-edge-litert 2.3's) runs in float but not in int8.
# Quantised, each one ends a delegated partition and runs single-threaded in
# TFLite's own kernels: ReMaX-T's int8 network had 74 partitions, and ran
# slower than fp32. Kept in float (behind a DEQUANTIZE / QUANTIZE pair, both
# delegated), the int8 network is delegated as the fp32 one is (23 vs 17
# partitions). Measured per op with benchmarks/int8_op_families.py
# (docs/benchmarks.md, "int8"); int8 SUM, MEAN, SUB, MUL, ADD, TRANSPOSE,
# LOGISTIC, CONV_2D and DEPTHWISE_CONV_2D are delegated.
XNNPACK_FLOAT_OPS = (
    "BATCH_MATMUL",
    "GELU",
    "HARD_SWISH",
    "L2_NORMALIZATION",
    "RSQRT",
    "SOFTMAX",
    "SQUARED_DIFFERENCE",
)
