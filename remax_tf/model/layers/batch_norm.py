"""Batch normalisation configured by plain values.

Layers take ``bn_config``, a JSON-friendly dict ``{"momentum": float,
"epsilon": float, "synchronized": bool}`` (missing keys take DeepLab2's solver
defaults), so that ``get_config`` stays serialisable. The model builder makes
it from ``trainer_options.solver_options`` (``use_sync_batchnorm``,
``batchnorm_momentum``, ``batchnorm_epsilon``). Pixel encoders take a
BatchNormalization *factory* instead (``norm_layer``); the two helpers below
convert between the forms.
"""

from __future__ import annotations

import functools
from typing import Any
from typing import Callable
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Union

import tf_keras

# DeepLab2 trainer.proto SolverOptions defaults.
DEFAULT_BN_MOMENTUM = 0.99
DEFAULT_BN_EPSILON = 1e-3
_BN_KEYS = ("momentum", "epsilon", "synchronized")

BNConfig = Optional[Mapping[str, Any]]


def resolve_bn_config(bn_config: BNConfig) -> Dict[str, Any]:
    """Fills the defaults and rejects unknown keys."""
    config = dict(bn_config or {})
    unknown = set(config) - set(_BN_KEYS)
    if unknown:
        raise ValueError(
            f"bn_config has unknown keys {sorted(unknown)}; allowed: {_BN_KEYS}."
        )
    return {
        "momentum": float(config.get("momentum", DEFAULT_BN_MOMENTUM)),
        "epsilon": float(config.get("epsilon", DEFAULT_BN_EPSILON)),
        "synchronized": bool(config.get("synchronized", False)),
    }


def batch_norm(
    bn_config: BNConfig,
    *,
    name: str,
    axis: Union[int, Sequence[int]] = -1,
    gamma_initializer: Any = "ones",
) -> tf_keras.layers.BatchNormalization:
    """A ``tf_keras`` BatchNormalization layer configured by ``bn_config``."""
    config = resolve_bn_config(bn_config)
    return tf_keras.layers.BatchNormalization(
        axis=list(axis) if isinstance(axis, (list, tuple)) else axis,
        momentum=config["momentum"],
        epsilon=config["epsilon"],
        synchronized=config["synchronized"],
        gamma_initializer=gamma_initializer,
        name=name,
    )


def norm_layer_factory(bn_config: BNConfig) -> Callable[..., tf_keras.layers.Layer]:
    """The BatchNormalization factory (``norm_layer``) pixel encoders take."""
    config = resolve_bn_config(bn_config)
    return functools.partial(tf_keras.layers.BatchNormalization, **config)


def bn_config_from_norm_layer(norm_layer: Optional[Callable]) -> Dict[str, Any]:
    """Inverse of :func:`norm_layer_factory`; None gives the defaults.

    Raises:
      ValueError: If ``norm_layer`` is not a ``functools.partial`` of
        ``tf_keras.layers.BatchNormalization``.
    """
    if norm_layer is None:
        return resolve_bn_config(None)
    if (
        isinstance(norm_layer, functools.partial)
        and norm_layer.func is tf_keras.layers.BatchNormalization
        and not norm_layer.args
    ):
        return resolve_bn_config(
            {k: v for k, v in norm_layer.keywords.items() if k in _BN_KEYS}
        )
    raise ValueError(
        f"norm_layer {norm_layer!r} is not supported here: pass "
        "functools.partial(tf_keras.layers.BatchNormalization, momentum=..., "
        "epsilon=..., synchronized=...) or None."
    )
