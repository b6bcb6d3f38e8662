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
