"""The tf.distribute strategy of a run, from DeepLab2's flags.

* ``--master`` (a TPU name or grpc:// address): TPUStrategy.
* ``TF_CONFIG`` naming more than one worker: MultiWorkerMirroredStrategy.
* ``--num_gpus`` > 1: MirroredStrategy over that many GPUs; 1: that GPU.
* otherwise: the default strategy (CPU or the one visible GPU).

:func:`disable_grappler_if_asked`: ``REMAX_TF_DISABLE_GRAPPLER=1`` skips
TensorFlow's graph optimiser (a faster start, slower steps), for smoke runs
and tests that train a handful of steps.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import tensorflow as tf


def disable_grappler_if_asked() -> None:
    """Turns TensorFlow's graph optimiser off when ``REMAX_TF_DISABLE_GRAPPLER=1``."""
    if os.environ.get("REMAX_TF_DISABLE_GRAPPLER") == "1":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def _num_workers_in_tf_config() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw[:200]!r}") from e
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def create_strategy(
    master: Optional[str] = None, num_gpus: int = 0
) -> tf.distribute.Strategy:
    """Creates the strategy DeepLab2's ``--master`` / ``--num_gpus`` ask for."""
    if master:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=master)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if _num_workers_in_tf_config() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if num_gpus > len(gpus):
        raise ValueError(
            f"--num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible. "
            "Fix: lower --num_gpus or check CUDA_VISIBLE_DEVICES."
        )
    if num_gpus > 1:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(num_gpus)])
    if num_gpus == 1:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several worker processes."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return False
    spec = resolver.cluster_spec().as_dict()
    return len(spec.get("worker", [])) + len(spec.get("chief", [])) > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this task writes summaries, exports and logs progress."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )
