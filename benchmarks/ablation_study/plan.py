"""The schedule of a run (``Settings``) and its jobs: one per (variant,
steps, seed), each with its full override list (``plan_jobs``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict
from typing import List
from typing import Sequence
from typing import Tuple

from .rows import BASE_OVERRIDES
from .rows import CURVE_FRACTIONS
from .rows import FIRST_SEED
from .rows import GROUPS
from .rows import PRETRAIN
from .rows import SOLVER
from .rows import VARIANTS
from .rows import Row
from .rows import convergence_rows


# ---------------------------------------------------------------------------
# Plan.
@dataclasses.dataclass
class Settings:
    """Schedule of a benchmark run.

    Attributes:
      steps: Training steps of every run (the full schedule).
      seeds: Seeds per variant.
      curve_fractions: The convergence rows' schedules, as fractions of
        ``steps``.
      steps_per_loop: Steps between progress lines / summaries.
      pretrain_steps: Steps of the shared backbone pre-training.
    """

    steps: int
    seeds: int
    curve_fractions: Tuple[float, ...] = CURVE_FRACTIONS
    steps_per_loop: int = 50
    pretrain_steps: int = PRETRAIN["steps"]


QUICK = Settings(
    steps=100,
    seeds=1,
    curve_fractions=(0.5, 1.0),
    steps_per_loop=25,
    pretrain_steps=100,
)
FULL = Settings(steps=1200, seeds=3, curve_fractions=CURVE_FRACTIONS, steps_per_loop=50)
QUICK_GROUPS = ("convergence", "learning_rate")
# Per-run wall time with two runs at a time on the 2-core development CPU, for
# --budget_minutes and the estimate. Measured in this regime (crop 97,
# 64 slots, six kMaX layers) on a machine shared with other work: a
# 1000-step kMaX run took 871 s with 1.5 steps/s in its loops (0.67 s/step)
# and ~2 min of start-up and evaluation of 150 images; an idle machine is
# faster, so this over-estimates.
STARTUP_SECONDS = 90.0
SECONDS_PER_STEP = 0.67
SECONDS_PER_EVAL = 30.0


def row_steps(row: Row, settings: Settings) -> int:
    return max(1, int(round(settings.steps * row.fraction)))


def seed_overrides(seed: int) -> Tuple[str, ...]:
    """A run's seed: initial weights, training loop and input pipeline."""
    return (f"trainer_options.seed={seed}", f"train_dataset_options.seed={seed}")


def schedule_overrides(steps: int, evals: int, steps_per_loop: int) -> Tuple[str, ...]:
    """``steps`` of training, evaluated ``evals`` times (the last at the end)."""
    interval = max(1, steps // evals)
    return (
        f"{SOLVER}.training_number_of_steps={steps}",
        f"trainer_options.steps_per_loop={min(steps_per_loop, interval)}",
        f"trainer_options.save_summaries_steps={steps_per_loop}",
        f"trainer_options.save_checkpoints_steps={steps}",
        f"evaluator_options.eval_interval={interval}",
    )


def pretrained_dir(data_dir: str, pretrain_steps: int = PRETRAIN["steps"]) -> str:
    """Where the shared pre-trained backbone lives: beside the data."""
    root = os.path.dirname(os.path.dirname(data_dir))
    return os.path.join(root, "pretrained", f"backbone_{pretrain_steps}steps")


def data_overrides(
    data_dir: str, pretrain_steps: int = PRETRAIN["steps"]
) -> Tuple[str, ...]:
    backbone = pretrained_dir(data_dir, pretrain_steps)
    return (
        f"train_dataset_options.file_pattern={data_dir}/train-*.tfrecord",
        f"eval_dataset_options.file_pattern={data_dir}/val-*.tfrecord",
        f"model_options.initial_checkpoint={backbone}",
    )


def select_rows(
    groups: Sequence[str], curve_fractions: Sequence[float] = CURVE_FRACTIONS
) -> List[Row]:
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(
            f"--rows: unknown group(s) {unknown}; known: {', '.join(GROUPS)}."
        )
    return [
        row
        for g in groups
        for row in (
            convergence_rows(curve_fractions) if g == "convergence" else GROUPS[g]()
        )
    ]


def plan_jobs(
    rows: Sequence[Row], settings: Settings, data_dir: str
) -> List[Dict[str, object]]:
    """One job per (variant, steps, seed); each carries its full override list
    and the evaluation-only override lists its rows need. Rows that share a
    variant and a step count share its runs; every run is evaluated once, at
    the end of its schedule."""
    plans: Dict[Tuple[str, int], Dict[str, object]] = {}
    for row in rows:
        plan = plans.setdefault(
            (row.variant, row_steps(row, settings)), {"evals": [], "curve": False}
        )
        if row.eval_overrides and row.eval_overrides not in plan["evals"]:
            plan["evals"].append(row.eval_overrides)
        plan["curve"] |= row.group == "convergence"
    jobs = []
    for (variant, steps), plan in plans.items():
        evals = 1
        for index in range(settings.seeds):
            seed = FIRST_SEED + index
            overrides = (
                BASE_OVERRIDES
                + data_overrides(data_dir, settings.pretrain_steps)
                + VARIANTS[variant].overrides
                + seed_overrides(seed)
                + schedule_overrides(steps, evals, settings.steps_per_loop)
            )
            jobs.append(
                dict(
                    name=f"{variant}_{steps}steps_seed{seed}",
                    variant=variant,
                    steps=steps,
                    seed=seed,
                    curve_run=plan["curve"],
                    num_evals=evals + len(plan["evals"]),
                    overrides=list(overrides),
                    extra_evals=[list(e) for e in plan["evals"]],
                )
            )
    return jobs


def estimate_minutes(jobs: Sequence[dict]) -> float:
    """Wall-time estimate from the per-run constants above, measured with two
    runs at a time on 2 cores (so about the same total with one)."""
    seconds = sum(
        STARTUP_SECONDS
        + j["steps"] * SECONDS_PER_STEP
        + j["num_evals"] * SECONDS_PER_EVAL
        for j in jobs
    )
    return seconds / 60.0 / 2.0
