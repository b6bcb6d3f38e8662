"""tf.distribute: two mirrored replicas and two workers agree with one."""

import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

pytestmark = pytest.mark.slow  # trains in subprocesses
TIMEOUT_S = 420

# One step from the same weights and batch: sync batch norm, every pixel
# sampled (no random sampling in the losses), deterministic input, no dropout.
DETERMINISTIC = (
    "trainer_options.solver_options.use_sync_batchnorm=true",
    "trainer_options.solver_options.training_number_of_steps=1",
    "trainer_options.steps_per_loop=1",
    "trainer_options.seed=5",
    "train_dataset_options.seed=5",
    "train_dataset_options.deterministic=true",
    "train_dataset_options.augmentations={min_scale_factor: 1.0 max_scale_factor: 1.0}",
)


def test_two_mirrored_cpus_give_the_one_device_loss(tiny_env, light_command, tmp_path):
    config, base = light_command
    overrides = list(base) + list(DETERMINISTIC)
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "two_replica_losses.py"),
            config,
            str(tmp_path),
            json.dumps(overrides),
        ],
        env=tiny_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    losses = json.loads(done.stdout.strip().splitlines()[-1])
    assert np.isfinite(losses["single"])
    np.testing.assert_allclose(losses["mirrored"], losses["single"], rtol=2e-3)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_end_with_identical_weights(
    tiny_env, light_command, tmp_path
):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    config, base = light_command
    overrides = list(base) + [
        "train_dataset_options.batch_size=4",
        "trainer_options.solver_options.training_number_of_steps=2",
        "trainer_options.seed=5",
    ]
    procs = []
    for index in range(2):
        env = dict(
            tiny_env,
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        )
        args = [
            sys.executable,
            os.path.join(REPO, "trainer", "train.py"),
            "--config_file",
            config,
            "--mode",
            "train",
            "--model_dir",
            str(tmp_path),
        ]
        for o in overrides:
            args += ["--config_override", o]
        procs.append(
            subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:  # Bounded: never leave a worker behind.
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    chief = tf.train.latest_checkpoint(os.path.join(str(tmp_path), "shapes_kmax"))
    (worker,) = [
        tf.train.latest_checkpoint(d)
        for d in glob.glob(os.path.join(str(tmp_path), "shapes_kmax", "workers", "*"))
    ]
    assert chief.endswith("ckpt-2") and worker.endswith("ckpt-2")
    a, b = tf.train.load_checkpoint(chief), tf.train.load_checkpoint(worker)
    names = [
        n
        for n in a.get_variable_to_shape_map()
        if "/.ATTRIBUTES/VARIABLE_VALUE" in n and "optimizer" not in n
    ]
    assert len(names) > 100
    for name in names:
        np.testing.assert_array_equal(
            a.get_tensor(name), b.get_tensor(name), err_msg=name
        )
