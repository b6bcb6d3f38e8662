"""Data: dataset descriptors, TFRecord I/O, converters and the input pipeline.

``remax_tf.data.build_dataset`` (see :mod:`remax_tf.data.input_pipeline`) is
imported lazily, so that reading descriptors does not import TensorFlow.
"""


def __getattr__(name):
    if name == "build_dataset":
        from remax_tf.data.input_pipeline import build_dataset

        return build_dataset
    raise AttributeError(f"module 'remax_tf.data' has no attribute {name!r}")


__all__ = ["build_dataset"]
