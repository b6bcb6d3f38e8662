"""Shared pytest setup: quiet TensorFlow, the real-data samples of
tests/testdata, the tiny settings of the demo models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The COCO panoptic and Cityscapes samples and the DeepLab2 reference counts,
# with their licences (tests/testdata/README.md).
TESTDATA = REPO_ROOT / "tests" / "testdata"

# The demo configs (configs/demo/*.textproto) at tiny size: 65x65 crops,
# batch 2, narrow decoder and ReMaX heads; a few seconds per traced step on
# CPU. Used by the trainer tests and the docs snippets (tests/test_docs.py).
TINY_MODEL_OVERRIDES = (
    "train_dataset_options.crop_size=[65, 65]",
    "train_dataset_options.min_resize_value=[65]",
    "train_dataset_options.max_resize_value=[65]",
    "train_dataset_options.batch_size=2",
    "eval_dataset_options.crop_size=[65, 65]",
    "eval_dataset_options.min_resize_value=[65]",
    "eval_dataset_options.max_resize_value=[65]",
    "model_options.max_deeplab.num_mask_slots=8",
    "model_options.max_deeplab.pixel_decoder_widths=[32, 16, 16, 8]",
    "model_options.max_deeplab.transformer_decoder_channels=32",
    "model_options.max_deeplab.transformer_decoder_ffn_channels=64",
    "model_options.max_deeplab.transformer_decoder_num_heads=2",
    "model_options.max_deeplab.pixel_space_head={output_channels: 16 head_channels: 32}",
)
# ReMaX configs only (shapes_remax): narrow semantic heads.
TINY_REMAX_OVERRIDES = (
    "model_options.remax={semantic_head_channels: 8 semantic_head_atrous_rates: [1, 2, 3]}",
)
# Four steps in loops of two, a checkpoint and summaries each loop.
TINY_LOOP_OVERRIDES = (
    "trainer_options.steps_per_loop=2",
    "trainer_options.save_checkpoints_steps=2",
    "trainer_options.save_summaries_steps=2",
    "trainer_options.solver_options.training_number_of_steps=4",
    "trainer_options.solver_options.warmup_steps=0",
    "evaluator_options.eval_steps=2",
)


@pytest.fixture(scope="session")
def testdata() -> pathlib.Path:
    """tests/testdata: ``coco_panoptic_sample/``, ``cityscapes_dummy/``,
    ``reference/``."""
    return TESTDATA


@pytest.fixture(scope="session")
def tiny_overrides():
    """Tiny model and four-step loops, for configs/demo/shapes_remax.textproto."""
    return TINY_MODEL_OVERRIDES + TINY_REMAX_OVERRIDES + TINY_LOOP_OVERRIDES


@pytest.fixture(scope="session")
def tiny_model_overrides():
    return TINY_MODEL_OVERRIDES


@pytest.fixture(scope="session")
def tiny_remax_overrides():
    return TINY_REMAX_OVERRIDES


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def run_benchmark():
    """run_benchmark(script, *args, check=True) -> CompletedProcess: runs
    ``benchmarks/<script>`` with this Python in the repository root (quiet
    TensorFlow logs), capturing text output."""

    def run(script, *args, check=True):
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "benchmarks" / script), *map(str, args)],
            cwd=REPO_ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
            text=True,
            check=check,
        )

    return run
