"""Layer scale (Touvron et al., "Going deeper with Image Transformers", 2021).

A learnable per-channel scale on a residual branch, initialised to a small
value so that each block starts close to the identity; ConvNeXt uses it with
an initial value of 1e-6 (DeepLab2 ``model/pixel_encoder/convnext.py``).
"""

from __future__ import annotations

from typing import Any
from typing import Dict

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class LayerScale(tf_keras.layers.Layer):
    """Multiplies the last axis by a learnable vector initialised to ``init_value``."""

    def __init__(self, init_value: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"LayerScale {self.name!r} needs a known channel dimension, got "
                f"input shape {input_shape}."
            )
        self.gamma = self.add_weight(
            name="gamma",
            shape=(channels,),
            initializer=tf_keras.initializers.Constant(self.init_value),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs * tf.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["init_value"] = self.init_value
        return config
