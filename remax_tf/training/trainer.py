"""The training loop: one orbit.StandardTrainer step reads like the paper's.

Per step, on every replica: forward in training mode, the kMaX/ReMaX loss
dict, gradients of the total scaled by 1/replicas (the loss is a local-batch
mean; summing replica gradients then gives the global-batch mean), optional
clipping, and the update — backbone variables through their own optimiser
with the backbone learning-rate multiplier, as DeepLab2 does.

Loss terms are averaged across replicas in cross-replica context and checked:
a NaN or Inf in any term records the step and the term, and the loop end
raises :class:`NonFiniteLossError` before the controller can write another
checkpoint, so the last checkpoint on disk is the last good one (DeepLab2
instead replaces NaN losses by zero and trains on).
"""

from __future__ import annotations

import time
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

import orbit
import tensorflow as tf
import tf_keras

from remax_tf import common
from remax_tf.protos import config_pb2
from remax_tf.training import optimization
from remax_tf.training.errors import NonFiniteLossError


class Trainer(orbit.StandardTrainer):
    """kMaX-DeepLab / ReMaX training with orbit."""

    def __init__(
        self,
        *,
        model: tf_keras.Model,
        loss_fn: Callable[
            [Dict[str, tf.Tensor], Dict[str, tf.Tensor]], Dict[str, tf.Tensor]
        ],
        loss_names: List[str],
        train_dataset,
        strategy: tf.distribute.Strategy,
        global_step: tf.Variable,
        solver,
        global_batch_size: int,
        backbone_variables: Optional[List[tf.Variable]] = None,
        progress: Optional[Callable[[Dict[str, float]], None]] = None,
        image_summaries=None,
    ):
        super().__init__(
            train_dataset,
            options=orbit.StandardTrainerOptions(
                use_tf_function=True, use_tf_while_loop=True
            ),
        )
        self._model = model
        self._loss_fn = loss_fn
        self._loss_names = list(loss_names)
        if common.TOTAL_LOSS not in self._loss_names:
            raise ValueError(
                f"the loss must report {common.TOTAL_LOSS!r}; got {self._loss_names}"
            )
        self._strategy = strategy
        self._global_step = global_step
        self._global_batch_size = global_batch_size
        self._total_steps = solver.training_number_of_steps
        self._clip_norm = (
            solver.clip_gradient_norm if solver.use_gradient_clipping else 0.0
        )
        # Coupled L2 on kernels for non-AdamW optimisers (DeepLab2 weight_decay).
        self._l2_weight = solver.weight_decay if solver.optimizer != "adamw" else 0.0
        self.optimizer = optimization.build_optimizer(solver)
        multiplier = solver.backbone_learning_rate_multiplier
        self.backbone_optimizer = None
        backbone_refs = {v.ref() for v in (backbone_variables or [])}
        if backbone_refs and multiplier != 1.0:
            self.backbone_optimizer = optimization.build_optimizer(solver, multiplier)
        self._backbone_refs = backbone_refs if self.backbone_optimizer else set()
        # Running sums of the replica-averaged loss terms over a loop. Plain
        # (mirrored) variables: Keras metrics are sync-on-read and cannot be
        # updated in the cross-replica context where the terms are reduced.
        self._loss_sums = tf.Variable(
            tf.zeros([len(self._loss_names)]), trainable=False, name="loss_sums"
        )
        self._loss_steps = tf.Variable(0.0, trainable=False, name="loss_steps")
        # First non-finite step (-1: none yet) and the index of its loss term.
        self._bad_step = tf.Variable(
            -1, dtype=tf.int64, trainable=False, name="nonfinite_step"
        )
        self._bad_term = tf.Variable(
            0, dtype=tf.int32, trainable=False, name="nonfinite_term"
        )
        self._bad_values = tf.Variable(
            tf.zeros([len(self._loss_names)]), trainable=False, name="nonfinite_values"
        )
        self._progress = progress
        self._image_summaries = image_summaries
        self._loop_start_time = None
        self._loop_start_step = None

    def build_optimizers(self) -> None:
        """Creates the optimiser slots up front: the training loop runs in a
        tf.while_loop, where no variable may be created."""
        variables = self._model.trainable_variables
        self.optimizer.build(
            [v for v in variables if v.ref() not in self._backbone_refs]
        )
        if self.backbone_optimizer is not None:
            self.backbone_optimizer.build(
                [v for v in variables if v.ref() in self._backbone_refs]
            )

    # -- orbit hooks ---------------------------------------------------------
    def train_loop_begin(self):
        self._loss_sums.assign(tf.zeros_like(self._loss_sums))
        self._loss_steps.assign(0.0)
        self._loop_start_time = time.time()
        self._loop_start_step = int(self._global_step.numpy())

    def train_step(self, iterator):
        inputs = next(iterator)
        step_before = tf.cast(self._global_step, tf.int64)
        per_replica = self._strategy.run(self._replica_step, args=(inputs,))
        losses = [
            self._strategy.reduce(
                tf.distribute.ReduceOp.MEAN, per_replica[name], axis=None
            )
            for name in self._loss_names
        ]
        values = tf.stack(losses)
        finite = tf.math.is_finite(values)
        first_bad = tf.logical_and(
            tf.logical_not(tf.reduce_all(finite)), self._bad_step < 0
        )

        def record():
            self._bad_step.assign(step_before + 1)
            self._bad_term.assign(
                tf.cast(tf.argmin(tf.cast(finite, tf.int32)), tf.int32)
            )
            self._bad_values.assign(values)
            return tf.constant(True)

        tf.cond(first_bad, record, lambda: tf.constant(False))
        self._loss_sums.assign_add(values)
        self._loss_steps.assign_add(1.0)
        self._global_step.assign_add(1)

    def train_loop_end(self) -> Dict[str, tf.Tensor]:
        bad_step = int(self._bad_step.numpy())
        if bad_step >= 0:
            index = int(self._bad_term.numpy())
            values = self._bad_values.numpy()
            others = ", ".join(f"{n}={v:.4g}" for n, v in zip(self._loss_names, values))
            raise NonFiniteLossError(
                step=bad_step,
                term=self._loss_names[index],
                value=float(values[index]),
                all_terms=others,
            )
        step = int(self._global_step.numpy())
        elapsed = max(time.time() - self._loop_start_time, 1e-9)
        steps = step - self._loop_start_step
        means = (self._loss_sums / tf.maximum(self._loss_steps, 1.0)).numpy()
        logs = {f"losses/{name}": float(m) for name, m in zip(self._loss_names, means)}
        # The optimizer's current rate (a mirrored variable under a strategy).
        logs["learning_rate"] = float(
            tf.convert_to_tensor(self.optimizer.learning_rate)
        )
        logs["examples_per_second"] = steps * self._global_batch_size / elapsed
        if self._progress is not None:
            self._progress(
                {
                    "step": step,
                    "total_steps": self._total_steps,
                    "loss": float(logs[f"losses/{common.TOTAL_LOSS}"]),
                    "steps_per_second": steps / elapsed,
                    "examples_per_second": logs["examples_per_second"],
                    "learning_rate": logs["learning_rate"],
                }
            )
        if self._image_summaries is not None:
            self._image_summaries.write(step)
        return logs

    # -- one replica ----------------------------------------------------------
    def _replica_step(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        variables = self._model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self._model(inputs[common.IMAGE], training=True)
            losses = self._loss_fn(inputs, outputs)
            total = losses[common.TOTAL_LOSS]
            if self._l2_weight > 0:
                total += self._l2_weight * tf.add_n(
                    [tf.nn.l2_loss(v) for v in variables if "kernel" in v.name]
                )
            scaled = total / self._strategy.num_replicas_in_sync
        gradients = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        if self._clip_norm > 0:
            clipped, _ = tf.clip_by_global_norm([g for g, _ in pairs], self._clip_norm)
            pairs = list(zip(clipped, [v for _, v in pairs]))
        if self.backbone_optimizer is None:
            self.optimizer.apply_gradients(pairs)
        else:
            backbone = [(g, v) for g, v in pairs if v.ref() in self._backbone_refs]
            rest = [(g, v) for g, v in pairs if v.ref() not in self._backbone_refs]
            self.optimizer.apply_gradients(rest)
            self.backbone_optimizer.apply_gradients(backbone)
        return {name: tf.cast(losses[name], tf.float32) for name in self._loss_names}

    @property
    def model(self) -> tf_keras.Model:
        return self._model

    @property
    def checkpoint_items(self) -> Dict[str, object]:
        items = {"optimizer": self.optimizer}
        if self.backbone_optimizer is not None:
            items["backbone_optimizer"] = self.backbone_optimizer
        return items


def build_trainer(
    config: config_pb2.ExperimentOptions,
    model: tf_keras.Model,
    loss,
    train_dataset,
    strategy: tf.distribute.Strategy,
    global_step: tf.Variable,
    *,
    progress: Optional[Callable[[Dict[str, float]], None]] = None,
    image_summaries=None,
) -> Trainer:
    """The trainer ``--mode train`` runs, its optimiser slots built.

    ``loss`` is the objective (a ``KMaXLoss``: its ``loss_names``); the solver
    and global batch come from ``config``; the backbone (the model's encoder
    checkpoint item) gets its own optimiser when the backbone learning-rate
    multiplier is not 1. Call it inside ``strategy.scope()``.
    """
    trainer = Trainer(
        model=model,
        loss_fn=loss,
        loss_names=list(loss.loss_names),
        train_dataset=train_dataset,
        strategy=strategy,
        global_step=global_step,
        solver=config.trainer_options.solver_options,
        global_batch_size=config.train_dataset_options.batch_size,
        backbone_variables=model.checkpoint_items[
            common.CKPT_ENCODER
        ].trainable_variables,
        progress=progress,
        image_summaries=image_summaries,
    )
    trainer.build_optimizers()
    return trainer
