"""Activation functions by name, as DeepLab2's kMaX layers select them.

DeepLab2 (``model/layers/activations.py``) maps 'gelu' to the *exact* GELU
(``approximate=False``), which is what every kMaX pixel-decoder, transformer
and head layer uses; 'none' is the identity.
"""

from __future__ import annotations

import functools
from typing import Callable
from typing import Dict

import tensorflow as tf

Activation = Callable[[tf.Tensor], tf.Tensor]


def _identity(x: tf.Tensor) -> tf.Tensor:
    return x


def _hard_swish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


_ACTIVATIONS: Dict[str, Activation] = {
    "none": _identity,
    "identity": _identity,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "gelu": functools.partial(tf.nn.gelu, approximate=False),
    "approximated_gelu": functools.partial(tf.nn.gelu, approximate=True),
    "swish": tf.nn.silu,
    "silu": tf.nn.silu,
    "hard_swish": _hard_swish,
    "sigmoid": tf.math.sigmoid,
    "softmax": tf.nn.softmax,
}


def known_activations() -> tuple:
    return tuple(sorted(_ACTIVATIONS))


def get_activation(name: str) -> Activation:
    """Returns the activation called ``name`` (exact match, case-insensitive).

    Raises:
      ValueError: If ``name`` is unknown; the message lists the known names.
    """
    key = str(name).lower()
    if key not in _ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; known: {', '.join(known_activations())}."
        )
    return _ACTIVATIONS[key]


def check_activation(name: str) -> str:
    """Validates ``name`` at construction time and returns it unchanged."""
    get_activation(name)
    return name
