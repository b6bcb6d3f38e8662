"""ReMaXSettings: the one resolved ReMaX object, with the proto's defaults."""

import dataclasses

import pytest

from remax_tf.config.resolved import ReMaXSettings
from remax_tf.config.resolved import resolve_remax_settings
from remax_tf.protos import model_pb2

# Fields resolved from elsewhere than the proto's default: "enabled" (the
# dataclass default is plain kMaX), and the atrous rates (a repeated field has
# no proto default; empty means kMaX's 6/12/18).
_NOT_FROM_PROTO_DEFAULTS = {"enabled", "semantic_head_atrous_rates"}


def test_defaults_equal_the_proto_defaults():
    options = model_pb2.ModelOptions()
    options.remax.SetInParent()  # present, every field at its default
    resolved = resolve_remax_settings(options)
    plain = ReMaXSettings()
    for field in dataclasses.fields(ReMaXSettings):
        if field.name in _NOT_FROM_PROTO_DEFAULTS:
            continue
        assert getattr(plain, field.name) == pytest.approx(
            getattr(options.remax, field.name)
        ), field.name
        assert getattr(resolved, field.name) == pytest.approx(
            getattr(plain, field.name)
        ), field.name
    assert resolved.enabled and not plain.enabled
    assert resolved.semantic_head_atrous_rates == plain.semantic_head_atrous_rates


@pytest.mark.parametrize(
    "stages, layers, expected", [(4, 3, 3), (4, 6, 4), (0, 6, 0), (2, 2, 2)]
)
def test_relaxed_layers_is_the_one_clamp(stages, layers, expected):
    remax = ReMaXSettings(enabled=True, num_relaxed_stages=stages)
    assert remax.relaxed_layers(layers) == expected
    assert ReMaXSettings(enabled=False).relaxed_layers(layers) == 0


def test_kmax_without_remax_uses_softmax_and_one_hot_classes():
    off = ReMaXSettings(enabled=False, activation="sigmoid", eta=0.1)
    assert off.mask_id_activation == "softmax" and off.reclass_eta == 0.0
    on = ReMaXSettings(enabled=True)
    assert on.mask_id_activation == "sigmoid" and on.reclass_eta == pytest.approx(0.1)
    assert on.has_semantic_loss(3)
    assert not dataclasses.replace(
        on, use_ground_truth_semantic=True
    ).has_semantic_loss(3)
    assert not dataclasses.replace(on, semantic_loss_weight=0.0).has_semantic_loss(3)
