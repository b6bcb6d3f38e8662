"""Training killed with SIGKILL resumes from its last checkpoint."""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.slow  # trains in subprocesses
TRAIN = os.path.join(REPO, "trainer", "train.py")
EXPERIMENT = "shapes_kmax"
TIMEOUT_S = 420


def command(model_dir, light_command, steps, mode="train"):
    config, overrides = light_command
    args = [
        sys.executable,
        TRAIN,
        "--config_file",
        config,
        "--mode",
        mode,
        "--model_dir",
        model_dir,
    ]
    for o in overrides + (
        f"trainer_options.solver_options.training_number_of_steps={steps}",
    ):
        args += ["--config_override", o]
    return args


def checkpoint_step(path):
    return int(path.rsplit("-", 1)[1])


def test_sigkill_after_a_checkpoint_then_resume(tiny_env, light_command, tmp_path):
    model_dir = str(tmp_path)
    workdir = os.path.join(model_dir, EXPERIMENT)
    proc = subprocess.Popen(
        command(model_dir, light_command, steps=400),
        env=tiny_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + TIMEOUT_S
        latest = None
        # Wait for a checkpoint past the initial one, then kill without warning
        # (possibly while the next checkpoint is being written).
        while time.time() < deadline and proc.poll() is None:
            latest = tf.train.latest_checkpoint(workdir)
            if latest and checkpoint_step(latest) >= 4:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "training ended before it could be killed"
        assert latest and checkpoint_step(latest) >= 4, "no checkpoint in time"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # Whatever was being written, the checkpoint the state file names is whole.
    latest = tf.train.latest_checkpoint(workdir)
    step = checkpoint_step(latest)
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)
    # Restarting resumes there and trains to the requested step.
    done = subprocess.run(
        command(model_dir, light_command, steps=step + 4),
        env=tiny_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"restored {latest} (step {step})" in done.stdout
    assert f"'global_step': {step + 4}" in done.stdout
    progress = [
        line for line in done.stdout.splitlines() if line.startswith("[train] step")
    ]
    assert progress and progress[0].startswith(f"[train] step {step + 2}/")
    assert checkpoint_step(tf.train.latest_checkpoint(workdir)) == step + 4


def test_cli_reports_bad_flags_and_missing_checkpoints(
    tiny_env, light_command, tmp_path
):
    bad = subprocess.run(
        command(str(tmp_path), light_command, steps=1, mode="dance"),
        env=tiny_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "dance" in bad.stderr
    no_checkpoint = subprocess.run(
        command(str(tmp_path), light_command, steps=1, mode="export"),
        env=tiny_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_checkpoint.returncode == 1
    assert "--mode=export: no checkpoint" in no_checkpoint.stderr
