"""Data: dataset descriptors, TFRecord I/O, converters and the input pipeline.

``remax_tf.data.build_dataset`` is :func:`remax_tf.data.input_pipeline.build_dataset`.
"""

from remax_tf.data.input_pipeline import build_dataset

__all__ = ["build_dataset"]
