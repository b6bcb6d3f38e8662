"""BatchNorm re-estimation restores strictly: a checkpoint of another model is
a named error before any data is read, not a model left partly at random."""

import pytest

from remax_tf.config import load_config
from remax_tf.config.small_crop import crop_overrides
from remax_tf.inference.model_files import ModelFileError
from remax_tf.training.batch_norm_stats import reestimate_checkpoint


def test_checkpoint_of_another_model_is_refused(
    repo_root, tiny_checkpoint, tiny_model_overrides, tiny_remax_overrides, tmp_path
):
    other = load_config(
        str(repo_root / "configs/demo/shapes_remax.textproto"),
        crop_overrides(65)
        + [*tiny_model_overrides, *tiny_remax_overrides]
        + ["model_options.max_deeplab.num_mask_slots=5"],
        environ={"REMAX_DATA_DIR": "/nonexistent"},
        validate=False,
    )
    with pytest.raises(ModelFileError, match="--checkpoint") as raised:
        reestimate_checkpoint(
            other,
            str(tiny_checkpoint / other.experiment_name),
            str(tmp_path / "out"),
        )
    assert "cluster_centers" in str(raised.value)  # the 5 vs 8 slots
    assert "Fix: pass the checkpoint trained with this --config_file" in str(
        raised.value
    )
    assert not (tmp_path / "out").exists()
