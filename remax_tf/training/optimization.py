"""Optimisers and learning-rate schedules from ``SolverOptions``.

* ``poly`` (DeepLab2): polynomial decay to ``poly_end_learning_rate``.
* ``step`` (ReMaX, paper Sec. 4.2): the rate is multiplied by
  ``lr_decay_factor`` (0.1) at each fraction of training in
  ``lr_decay_boundaries`` (default 85% and 95%).
* ``cosine`` and ``constant``.

Any of them can start with DeepLab2's linear warm-up (``warmup_steps``: the
rate grows as step / warmup_steps times the base rate).

AdamW follows DeepLab2: decoupled weight decay applied to kernels only
(variables whose name ends in ``kernel`` or ``weight``; DeepLab2
trainer/trainer.py), never to biases, norms or embeddings.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tf_keras

from remax_tf.protos import trainer_pb2

# ReMaX paper Sec. 4.2: "multiplied by a decay factor of 0.1 when the training
# reaches 85% and 95% of the total iterations".
REMAX_LR_DECAY_BOUNDARIES = (0.85, 0.95)
# SGD momentum used by DeepLab2's trainer.
SGD_MOMENTUM = 0.9
# A variable receives decoupled weight decay only if its name matches (DeepLab2
# AdamWeightDecay include_in_weight_decay).
WEIGHT_DECAY_VARIABLE_PATTERN = r"(kernel|weight)(:\d+)?$"


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class StepDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant decay at fractions of the schedule length."""

    def __init__(
        self,
        initial_learning_rate: float,
        total_steps: int,
        boundaries: Sequence[float] = REMAX_LR_DECAY_BOUNDARIES,
        decay_factor: float = 0.1,
    ):
        super().__init__()
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.boundaries = tuple(float(b) for b in boundaries)
        self.decay_factor = float(decay_factor)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        passed = tf.zeros([], tf.float32)
        for fraction in self.boundaries:
            passed += tf.cast(step >= fraction * self.total_steps, tf.float32)
        return self.initial_learning_rate * tf.pow(self.decay_factor, passed)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "boundaries": list(self.boundaries),
            "decay_factor": self.decay_factor,
        }


@tf_keras.utils.register_keras_serializable(package="remax_tf")
class LinearWarmup(tf_keras.optimizers.schedules.LearningRateSchedule):
    """DeepLab2's warm-up: ``step / warmup_steps * rate`` before
    ``warmup_steps``, then the wrapped schedule (evaluated at ``step``)."""

    def __init__(self, initial_learning_rate: float, schedule, warmup_steps: int):
        super().__init__()
        self.initial_learning_rate = float(initial_learning_rate)
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.initial_learning_rate * step / float(self.warmup_steps)
        return tf.where(step < self.warmup_steps, warm, self.schedule(step))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "schedule": tf_keras.optimizers.schedules.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = tf_keras.optimizers.schedules.deserialize(
            config["schedule"]
        )
        return cls(**config)


def build_learning_rate_schedule(
    solver: trainer_pb2.SolverOptions, multiplier: float = 1.0
) -> tf_keras.optimizers.schedules.LearningRateSchedule:
    """The schedule named by ``solver.learning_policy``, times ``multiplier``."""
    rate = solver.base_learning_rate * multiplier
    steps = solver.training_number_of_steps
    policy = solver.learning_policy
    if policy == "poly":
        schedule = tf_keras.optimizers.schedules.PolynomialDecay(
            initial_learning_rate=rate,
            decay_steps=steps,
            end_learning_rate=solver.poly_end_learning_rate * multiplier,
            power=solver.poly_learning_power,
        )
    elif policy == "step":
        schedule = StepDecay(
            rate,
            steps,
            tuple(solver.lr_decay_boundaries) or REMAX_LR_DECAY_BOUNDARIES,
            solver.lr_decay_factor,
        )
    elif policy == "cosine":
        schedule = tf_keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=steps, alpha=0.0
        )
    elif policy == "constant":
        schedule = tf_keras.optimizers.schedules.PiecewiseConstantDecay(
            [steps], [rate, rate]
        )
    else:
        raise ValueError(
            f"trainer_options.solver_options.learning_policy = {policy!r} is not "
            "supported; use 'poly', 'step', 'cosine' or 'constant'."
        )
    if solver.warmup_steps > 0:
        schedule = LinearWarmup(rate, schedule, solver.warmup_steps)
    return schedule


def build_optimizer(
    solver: trainer_pb2.SolverOptions, multiplier: float = 1.0
) -> tf_keras.optimizers.Optimizer:
    """The optimizer of ``solver`` with its schedule (scaled by ``multiplier``)."""
    schedule = build_learning_rate_schedule(solver, multiplier)
    name = solver.optimizer
    if name == "adam":
        return tf_keras.optimizers.Adam(learning_rate=schedule)
    if name == "sgd":
        return tf_keras.optimizers.SGD(learning_rate=schedule, momentum=SGD_MOMENTUM)
    if name == "adamw":
        optimizer = tf_keras.optimizers.AdamW(
            learning_rate=schedule, weight_decay=solver.adamw_weight_decay
        )
        # re.search on the variable name: anything that is not a kernel is
        # excluded from the decoupled decay.
        optimizer.exclude_from_weight_decay(
            var_names=[rf"^(?!.*{WEIGHT_DECAY_VARIABLE_PATTERN})"]
        )
        return optimizer
    raise ValueError(
        f"trainer_options.solver_options.optimizer = {name!r} is not supported; "
        "use 'adam', 'adamw' or 'sgd'."
    )


def uses_weight_decay(
    optimizer: tf_keras.optimizers.Optimizer, variable: tf.Variable
) -> bool:
    """Whether ``optimizer`` applies decoupled weight decay to ``variable``."""
    return bool(
        getattr(optimizer, "weight_decay", None)
    ) and optimizer._use_weight_decay(variable)
