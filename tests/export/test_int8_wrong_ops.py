"""Ops whose int8 kernels are wrong stay float in every int8 conversion
(``tflite.INT8_WRONG_OPS``): the k-means update's ONE_HOT."""

import numpy as np
import tensorflow as tf

from remax_tf.export import tflite

_PIXELS, _CHANNELS, _CLUSTERS = 64, 8, 16


class _KMeansCounts(tf.Module):
    """Each pixel joins its arg-max cluster; output: pixels per cluster (the
    k-means update of kmax_layer.py with values of one)."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.centres = tf.constant(rng.normal(size=(_CHANNELS, _CLUSTERS)), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, _PIXELS, _CHANNELS], tf.float32)])
    def __call__(self, pixels):
        assignment = tf.one_hot(tf.argmax(pixels @ self.centres, axis=-1), _CLUSTERS)
        return tf.einsum("blm,bld->bmd", assignment, tf.ones_like(pixels[..., :1]))


def _dataset():
    rng = np.random.default_rng(1)
    for _ in range(8):
        yield [rng.normal(size=(1, _PIXELS, _CHANNELS)).astype(np.float32)]


def test_one_hot_stays_float_and_every_pixel_counts_once():
    # TensorFlow 2.20's int8 ONE_HOT reads its off value as 0.502: every
    # cluster would count about half of all pixels (measured: 224 of 64 without the fix).
    module = _KMeansCounts()
    for float_ops in ((), tflite.XNNPACK_FLOAT_OPS):
        content = tflite.quantize_int8(
            module.__call__.get_concrete_function(),
            module,
            _dataset,
            float_ops=float_ops,
        )
        interpreter = tf.lite.Interpreter(model_content=content)
        interpreter.allocate_tensors()
        (inp,) = interpreter.get_input_details()
        (out,) = interpreter.get_output_details()
        pixels = next(iter(_dataset()))[0]
        interpreter.set_tensor(inp["index"], pixels)
        interpreter.invoke()
        counts = interpreter.get_tensor(out["index"]).astype(np.float64)
        if out["dtype"] != np.float32:
            scale, zero_point = out["quantization"]
            counts = (counts - zero_point) * scale
        assert abs(counts.sum() - _PIXELS) < 0.5, (float_ops, counts.sum())
        one_hot = [
            d for d in interpreter.get_tensor_details() if d["name"].endswith("one_hot")
        ]
        assert one_hot and all(d["dtype"] == np.float32 for d in one_hot)
