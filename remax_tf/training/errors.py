"""Errors that stop a run with a message saying what happened and what to do."""

from remax_tf.errors import RemaxError


class NonFiniteLossError(RemaxError, RuntimeError):
    """A loss term became NaN or Inf; training stopped before saving it."""

    def __init__(self, step: int, term: str, value: float, all_terms: str = ""):
        self.step, self.term, self.value = step, term, value
        super().__init__(
            f"non-finite loss at step {step}: {term} = {value} (all terms: {all_terms}). "
            "Training stopped; no checkpoint was written after this step, so the last "
            "checkpoint in model_dir is the last good one. Fix: lower "
            "base_learning_rate, enable use_gradient_clipping, or enable ReMaX "
            "(model_options.remax), which trains stably without clipping."
        )


class TrainingSetupError(RemaxError, ValueError):
    """model_dir, checkpoint or dataset problems found before training."""


class ConfigChangedError(TrainingSetupError):
    """A resumed training run's config differs from the one model_dir
    recorded, in fields that would change what is trained."""

    def __init__(self, message: str, changes):
        self.changes = list(changes)  # (field, recorded value, new value)
        super().__init__(message)
