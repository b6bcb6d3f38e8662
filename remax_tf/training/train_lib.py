"""Runs an experiment: DeepLab2's modes on orbit, with its model_dir layout.

``model_dir/<experiment_name>/`` holds the checkpoints (``ckpt-N``), ``train/``
and ``eval/`` TensorBoard summaries, ``eval/metrics_*.json``, the config it
was trained with (``config.textproto``, see :mod:`config_record`) and, after
export, ``export/``.

Before a training or evaluation run builds its model it checks, cheaply:
the config, a resume against the recorded config (training), and the labels
of the first batch's worth of records against the config's dataset
(:func:`inputs.check_input_labels`). Data problems met later (a damaged
TFRecord, a label the in-graph check refuses) stop the run with a
:class:`~remax_tf.errors.DataError` naming the file
(:func:`inputs.explain_data_errors`).
"""

from __future__ import annotations

import os
from typing import Callable
from typing import Dict
from typing import Optional

from absl import logging
import orbit
import tensorflow as tf
import tf_keras

from remax_tf import losses
from remax_tf.config import validate_config
from remax_tf.config.dataset_choice import EVAL
from remax_tf.config.dataset_choice import TRAIN
from remax_tf.config.dataset_choice import dataset_descriptor
from remax_tf.export.exporter import export_checkpoint
from remax_tf.export.exporter import export_from_config
from remax_tf.inference.model_files import ModelFileError
from remax_tf.inference.model_files import find_checkpoint
from remax_tf.model import build_model
from remax_tf.protos import config_pb2
from remax_tf.training import checkpoints
from remax_tf.training import config_record
from remax_tf.training import distribution
from remax_tf.training.errors import TrainingSetupError
from remax_tf.training.evaluator import Evaluator
from remax_tf.training.image_summaries import build_image_summaries
from remax_tf.training.inputs import check_input_labels
from remax_tf.training.inputs import distributed_dataset
from remax_tf.training.inputs import explain_data_errors
from remax_tf.training.modes import MODES
from remax_tf.training.progress import ProgressPrinter
from remax_tf.training.progress import orbit_messages_to_log
from remax_tf.training.trainer import build_trainer


def experiment_dir(model_dir: str, config: config_pb2.ExperimentOptions) -> str:
    """DeepLab2's layout: the experiment name under ``--model_dir``."""
    return (
        os.path.join(model_dir, config.experiment_name)
        if config.experiment_name
        else model_dir
    )


def _dataset_split(mode: str) -> str:
    """The split whose dataset ``mode`` reads (``dataset_choice.dataset_name``)."""
    return EVAL if mode in ("eval", "continuous_eval") else TRAIN


def build_keras_model(config, descriptor, crop_size, training: bool) -> tf_keras.Model:
    """Builds the model and creates its variables (inference ones, plus the
    training-only ones when ``training``)."""
    model = build_model(config, descriptor)
    dummy = tf.zeros([1] + list(crop_size) + [3], tf.float32)
    model(dummy, training=False)
    if training:
        model(dummy, training=True)
    return model


def resolve_checkpoint(
    mode: str, config: config_pb2.ExperimentOptions, model_dir: str
) -> str:
    """The checkpoint ``--mode eval|export`` reads: ``model_dir`` as a
    ``ckpt-N`` prefix, a directory holding a ``checkpoint`` file (its latest),
    or the trainer's model_dir (``model_dir/<experiment_name>/``, its latest);
    the forms ``remax-export --checkpoint`` and ``remax-predict --model`` take.

    Raises:
      TrainingSetupError: no checkpoint there.
    """
    try:
        return find_checkpoint(model_dir, config.experiment_name, "--model_dir")
    except ModelFileError as e:
        raise TrainingSetupError(
            f"--mode={mode}: no checkpoint in {experiment_dir(model_dir, config)}. "
            "Fix: train first, or point --model_dir at a trained run (the trainer's "
            "model_dir with the config's experiment_name, the directory holding its "
            "'checkpoint' file, or a ckpt-N prefix)."
        ) from e


def _export_checkpoint(
    config: config_pb2.ExperimentOptions, model_dir: str
) -> Dict[str, object]:
    """``--mode export``: the checkpoint ``model_dir`` stands for (its latest),
    restored strictly (every inference variable), exported to
    ``<its directory>/export``."""
    checkpoint = resolve_checkpoint("export", config, model_dir)
    workdir = os.path.dirname(checkpoint)
    try:
        export = export_checkpoint(config, checkpoint, os.path.join(workdir, "export"))
    except ValueError as e:
        raise TrainingSetupError(f"--mode=export: {e}") from e
    return {
        "model_dir": workdir,
        "global_step": int(checkpoint.rsplit("-", 1)[1]),
        "export": export,
    }


def run_experiment(
    mode: str,
    config: config_pb2.ExperimentOptions,
    model_dir: str,
    master: Optional[str] = None,
    num_gpus: int = 0,
    *,
    strategy: Optional[tf.distribute.Strategy] = None,
    progress: Optional[Callable[[Dict[str, float]], None]] = None,
    allow_config_change: bool = False,
) -> Dict[str, object]:
    """Runs ``mode`` and returns what it produced (final logs, metrics, paths).

    Args:
      mode: One of ``MODES``.
      config: A loaded ``ExperimentOptions``.
      model_dir: Base directory; the experiment uses
        ``model_dir/experiment_name``.
      master: TPU name or address (``--master``).
      num_gpus: GPUs to use (``--num_gpus``).
      strategy: Use this strategy instead of creating one (tests).
      progress: Receives the per-loop progress statistics; default prints.
      allow_config_change: Resume training although the config differs from
        the one model_dir recorded (``--allow_config_change``).

    Raises:
      RemaxError: (a subclass) a config, model_dir, checkpoint or data problem
        the message explains.
    """
    if mode not in MODES:
        raise ValueError(f"--mode={mode!r}: use one of {MODES}.")
    with orbit_messages_to_log():
        if mode == "export":
            return _export_checkpoint(config, model_dir)
        with explain_data_errors(config, mode):
            return _run_loops(
                mode,
                config,
                model_dir,
                master,
                num_gpus,
                strategy,
                progress,
                allow_config_change,
            )


def _run_loops(  # noqa: C901, PLR0915 (long orchestration, to split)
    mode: str,
    config: config_pb2.ExperimentOptions,
    model_dir: str,
    master: Optional[str],
    num_gpus: int,
    strategy: Optional[tf.distribute.Strategy],
    progress: Optional[Callable[[Dict[str, float]], None]],
    allow_config_change: bool,
) -> Dict[str, object]:
    """Training and evaluation modes on orbit (see :func:`run_experiment`)."""
    strategy = strategy or distribution.create_strategy(master, num_gpus)
    replicas = strategy.num_replicas_in_sync
    validate_config(config, num_replicas=replicas)
    # --mode eval reads one checkpoint, named in any of the three forms.
    eval_checkpoint = (
        resolve_checkpoint(mode, config, model_dir) if mode == "eval" else None
    )
    workdir = (
        os.path.dirname(eval_checkpoint)
        if eval_checkpoint
        else experiment_dir(model_dir, config)
    )
    chief = distribution.is_chief(strategy)
    checkpoint_dir = (
        workdir if chief else checkpoints.worker_scratch_dir(workdir, strategy)
    )
    checkpoints.check_model_dir(checkpoint_dir)
    descriptor = dataset_descriptor(config, _dataset_split(mode))
    training = mode in ("train", "train_and_eval")
    if training:
        config_record.check_resume(
            workdir, config, allow_config_change=allow_config_change, mode=mode
        )
    check_input_labels(config, mode)
    if training and chief:
        config_record.record_config(workdir, config)
    logging.info(
        "Mode %s with %s (%d replicas); model_dir %s",
        mode,
        type(strategy).__name__,
        replicas,
        workdir,
    )

    crop = list(
        config.train_dataset_options.crop_size or config.eval_dataset_options.crop_size
    )
    if config.trainer_options.seed:
        # Same seed, same initial weights and augmentation on every worker.
        tf_keras.utils.set_random_seed(config.trainer_options.seed)
    with strategy.scope():
        model = build_keras_model(config, descriptor, crop, training)
        global_step = orbit.utils.create_global_step()
        trainer = evaluator = None
        if training:
            loss = losses.build_loss(config, descriptor)
            trainer = build_trainer(
                config,
                model,
                loss,
                distributed_dataset(strategy, config.train_dataset_options, True),
                strategy,
                global_step,
                progress=(progress or ProgressPrinter()) if chief else None,
                image_summaries=(
                    build_image_summaries(config, model, descriptor, strategy)
                    if chief and not distribution.is_multi_worker(strategy)
                    else None
                ),
            )
        if mode in ("eval", "train_and_eval", "continuous_eval"):
            evaluator = Evaluator(
                config=config,
                model=model,
                descriptor=descriptor,
                strategy=strategy,
                global_step=global_step,
                output_dir=os.path.join(workdir, "eval"),
            )

    items = dict(global_step=global_step, **model.checkpoint_items)
    if trainer is not None:
        items.update(trainer.checkpoint_items)
    checkpoint = tf.train.Checkpoint(**items)
    manager_class = (
        tf.train.CheckpointManager
        if training
        else checkpoints.PartialRestoreCheckpointManager
    )
    manager = manager_class(
        checkpoint,
        directory=checkpoint_dir,
        max_to_keep=config.trainer_options.num_checkpoints_to_keep,
        step_counter=global_step,
        checkpoint_interval=config.trainer_options.save_checkpoints_steps,
        init_fn=(lambda: checkpoints.restore_initial_checkpoint(config, model))
        if training
        else None,
        **({} if training else {"restore_path": eval_checkpoint}),
    )
    with checkpoints.explain_restore_errors(checkpoint_dir, config):
        controller = orbit.Controller(
            strategy=strategy,
            trainer=trainer,
            evaluator=evaluator,
            global_step=global_step,
            steps_per_loop=config.trainer_options.steps_per_loop,
            checkpoint_manager=manager,
            summary_interval=config.trainer_options.save_summaries_steps
            if chief
            else None,
            summary_dir=os.path.join(workdir, "train") if chief else None,
            eval_summary_dir=os.path.join(workdir, "eval") if chief else None,
        )
    restored = eval_checkpoint or manager.latest_checkpoint
    if restored and chief:
        step = int(global_step.numpy())
        print(f"[{mode}] restored {restored} (step {step})", flush=True)
    result: Dict[str, object] = {"model_dir": workdir}
    total_steps = config.trainer_options.solver_options.training_number_of_steps
    eval_steps = config.evaluator_options.eval_steps
    with strategy.scope(), checkpoints.explain_empty_dataset(config):
        if mode == "train":
            if int(global_step.numpy()) == 0:
                controller.save_checkpoint()
            controller.train(steps=total_steps)
        elif mode == "train_and_eval":
            if int(global_step.numpy()) == 0:
                controller.save_checkpoint()
            controller.train_and_evaluate(
                train_steps=total_steps,
                eval_steps=eval_steps,
                eval_interval=config.evaluator_options.eval_interval,
            )
        elif mode == "eval":
            controller.evaluate(steps=eval_steps)
        elif mode == "continuous_eval":
            timeout = config.evaluator_options.continuous_eval_timeout
            controller.evaluate_continuously(
                steps=eval_steps, timeout=None if timeout < 0 else timeout
            )
    if evaluator is not None and evaluator.last_results is not None:
        result["metrics"] = evaluator.last_results
    if training and chief and config.trainer_options.export_at_end:
        result["export"] = export_from_config(
            config, model, os.path.join(workdir, "export")
        )
    result["global_step"] = int(global_step.numpy())
    return result
