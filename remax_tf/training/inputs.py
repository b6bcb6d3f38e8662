"""Distributed input pipelines for training and evaluation."""

from __future__ import annotations

from remax_tf.training.errors import TrainingSetupError


def distributed_dataset(strategy, options, is_training: bool):
    """The per-replica input pipelines of ``options``; data problems become
    TrainingSetupError."""
    from remax_tf.data import build_dataset

    def dataset_fn(context):
        return build_dataset(options, is_training=is_training, input_context=context)

    try:
        return strategy.distribute_datasets_from_function(dataset_fn)
    except (ValueError, KeyError, FileNotFoundError) as e:
        split = "train" if is_training else "eval"
        raise TrainingSetupError(f"{split}_dataset_options: {e}") from e
