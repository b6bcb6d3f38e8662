"""Run by test_distributed.py in a fresh process: the first-step loss of one
device and of MirroredStrategy over two logical CPUs, same global batch and
weights. Prints one JSON line."""

import json
import os
import sys

import tensorflow as tf

# Two logical CPU devices must be configured before TensorFlow starts.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
if os.environ.get("REMAX_TF_DISABLE_GRAPPLER") == "1":
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

from remax_tf.config import load_config  # noqa: E402
from remax_tf.training import run_experiment  # noqa: E402


def first_loss(strategy, model_dir, overrides):
    config = load_config(sys.argv[1], overrides)
    stats = []
    run_experiment("train", config, model_dir, strategy=strategy, progress=stats.append)
    return stats[0]["loss"]


def main():
    out = sys.argv[2]
    overrides = json.loads(sys.argv[3])
    single = first_loss(
        tf.distribute.OneDeviceStrategy("/cpu:0"), os.path.join(out, "one"), overrides
    )
    mirrored = first_loss(
        tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
        os.path.join(out, "two"),
        overrides,
    )
    print(json.dumps({"single": single, "mirrored": mirrored}))


if __name__ == "__main__":
    main()
