"""A demo re-run into a folder trained with other settings names the fix the
demo has (another --output_dir), not the trainer's --allow_config_change."""

import pytest

from remax_tf import demo
from remax_tf.training import ConfigChangedError
from remax_tf.training import TrainingSetupError
from remax_tf.training import train_lib


def test_changed_settings_point_at_a_fresh_output_dir(monkeypatch, tmp_path):
    def refuse(mode, config, model_dir, *args, **kwargs):
        raise ConfigChangedError(
            "trainer message", [("trainer_options.solver_options.warmup_steps", 2, 5)]
        )

    monkeypatch.setattr(train_lib, "run_experiment", refuse)
    model_dir = str(tmp_path / "model")
    with pytest.raises(TrainingSetupError) as raised:
        demo.train_and_export(
            demo.DEMO_CONFIG, str(tmp_path / "data"), model_dir, [], num_steps=50
        )
    message = str(raised.value)
    assert "warmup_steps" in message and "fresh --output_dir" in message
    assert model_dir in message and "--allow_config_change" not in message
