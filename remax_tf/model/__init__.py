"""kMaX-DeepLab models with ReMaX's training-only relaxations.

``build_model(config)`` is the entry point, ``KMaXDeepLab`` the model class
and ``ReMask`` the training-only relaxation of the mask logits it applies in
its training forward pass.
"""

from remax_tf.model.builder import build_model
from remax_tf.model.kmax_deeplab import KMaXDeepLab
from remax_tf.model.remask import ReMask

__all__ = ["KMaXDeepLab", "ReMask", "build_model"]
