"""Learned relative positional encodings of axial attention (Axial-DeepLab).

Axial-DeepLab (Wang et al., ECCV 2020) adds position-sensitive terms to 1D
self-attention: a table of ``2 * max_span - 1`` embeddings, one per relative
offset, gathered into a [query, key, depth] tensor. DeepLab2
(``model/layers/positional_encodings.py``) fixes ``max_span`` to 255, so the
table size (and the parameter count) does not depend on the input size;
offsets beyond the span share the outermost embeddings.
"""

from __future__ import annotations

from typing import Any
from typing import Dict

import numpy as np
import tensorflow as tf
import tf_keras

# DeepLab2 positional_encodings.MAX_SPAN: covers global attention on lengths up
# to 255 (e.g. 129 at stride 8 of a 1025 input).
MAX_SPAN = 255


def relative_distance_indices(length: int, max_span: int = MAX_SPAN) -> np.ndarray:
    """[length, length] table indices: key index - query index + max_span - 1.

    Global attention (keys = queries); clipped to the table for lengths beyond
    ``max_span`` as DeepLab2 does.
    """
    index = np.arange(length)
    distance = index[None, :] - index[:, None] + max_span - 1
    return np.clip(distance, 0, 2 * max_span - 2).astype(np.int32)


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class RelativePositionalEncoding(tf_keras.layers.Layer):
    """Returns [L, L, depth] relative embeddings for a [N, L, C] input.

    Only the static length ``L`` of the input is read.
    """

    def __init__(
        self,
        depth: int,
        *,
        max_span: int = MAX_SPAN,
        initialization_std: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.depth = int(depth)
        self.max_span = int(max_span)
        self.initialization_std = float(initialization_std)

    def build(self, input_shape) -> None:
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(2 * self.max_span - 1, self.depth),
            initializer=tf_keras.initializers.TruncatedNormal(
                stddev=self.initialization_std
            ),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        length = inputs.shape[1]
        if length is None:
            raise ValueError(
                f"{self.name}: the attended axis needs a static length, got input "
                f"shape {inputs.shape}; build the model with a fixed input size."
            )
        indices = relative_distance_indices(int(length), self.max_span)
        return tf.gather(self.embeddings, tf.constant(indices))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            depth=self.depth,
            max_span=self.max_span,
            initialization_std=self.initialization_std,
        )
        return config
