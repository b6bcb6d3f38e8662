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

# Op types the int8 export keeps in float, for XNNPACK (the CPU delegate of
# the stock TFLite interpreters: TensorFlow 2.20's and ai-edge-litert 2.3's).
# Quantised, an op XNNPACK rejects ends a delegated partition and runs
# single-threaded in TFLite's own kernels; ReMaX-T's int8 network had 74
# partitions (fp32: 17) and ran slower than fp32. Measured per op
# (benchmarks/int8_op_families.py, docs/benchmarks.md "int8"): XNNPACK runs
# BATCH_MATMUL, GELU, HARD_SWISH, RSQRT, SOFTMAX and SQUARED_DIFFERENCE in
# float only, and int8 ADD / SUB only when the scales of inputs and output are
# close (layer norm's x - mean and var + epsilon are not); L2_NORMALIZATION it
# takes in neither. Kept float (behind a DEQUANTIZE / QUANTIZE pair, both
# delegated), ReMaX-T's int8 network has 18 partitions. int8 CONV_2D,
# DEPTHWISE_CONV_2D, FULLY_CONNECTED, MEAN, SUM, MUL, TRANSPOSE and LOGISTIC
# are delegated and stay int8.
XNNPACK_FLOAT_OPS = (
    "ADD",
    "BATCH_MATMUL",
    "GELU",
    "HARD_SWISH",
    "L2_NORMALIZATION",
    "RSQRT",
    "SOFTMAX",
    "SQUARED_DIFFERENCE",
    "SUB",
)

# Op types whose int8 kernels give wrong results, kept float in every int8
# conversion whatever ``float_ops`` says. ONE_HOT (TensorFlow 2.20's
# quantiser): the int8 file writes the off value as the raw integer 0, which
# the output's zero point -128 (scale 1/255) reads as 0.502, so every pixel
# counts half in every cluster of the k-means update (SPEC section 5: the
# one-hot of the argmax assignment). Found with TFLite's quantisation
# debugger (error 127 steps on each kMaX layer's one_hot); it cost the
# trained v2 demo model 26.8 PQ in full int8 (docs/benchmarks.md). The int8
# kernel copies the raw on/off values and ignores scale and zero point by
# design (tensorflow/tensorflow#27422, which added it), while the quantiser
# gives its output the usual asymmetric parameters.
INT8_WRONG_OPS = ("ONE_HOT",)
