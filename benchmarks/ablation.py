"""The paper's claims in miniature: ReMaX vs kMaX ablations (docs/benchmarks.md).

    python benchmarks/ablation.py                  # full run: 75 trainings, hours
    python benchmarks/ablation.py --quick          # smoke run, a few minutes
    python benchmarks/ablation.py --rows convergence,eta --seeds 3 --steps 600

The regime (docs/benchmarks.md, "ReMaX where kMaX learns things"):
``shapes_panoptic_v2`` (20 thing classes told by shape, texture and colour;
several touching things per image; 64 mask slots), and every run starts from the *same* MobileNetV3-Small backbone pre-trained on
single-object crops of those classes (``remax_tf.training.pretrain_backbone``,
cached), as the paper's runs start from ImageNet weights. The regime was
chosen by a rule fixed before looking at ReMaX's numbers: plain kMaX reaches
things PQ >= 30 at the end of the schedule. Reports PQ, things / stuff PQ and
class-agnostic things PQ (mean ± sample std over seeds) on a fixed
validation set for the paper's ablations:

* ``convergence``: kMaX-DeepLab vs ReMaX, PQ vs steps (paper Fig. 4, Table 1).
  Each point is its own full schedule (warm-up, the step decay at 85% / 95%,
  evaluation at its end), as Fig. 4 compares schedules; so no point is
  evaluated with lagging BatchNorm statistics at a high learning rate;
* ``activation_clipping``: sigmoid vs softmax, with and without ReMaX and
  gradient clipping (paper Table 2);
* ``num_remask``: ReMask on the first 0/2/4/6 kMaX layers (paper Table 3);
* ``eta``: ReClass eta 0/0.05/0.1/0.2 (paper Table 4);
* ``head_at_test``: ReMaX semantic heads removed vs kept at test time, the
  same trained weights evaluated twice (paper Table 5);
* ``stop_gradient``: stop-gradient vs none, ground-truth semantic masks in
  place of the semantic heads (paper Table 7);
* ``learning_rate``: kMaX and ReMaX, no clipping, at 1x and 10x the base
  learning rate (paper Sec. 4.2: ReMaX trains at over 10x kMaX's rate without
  clipping), plus kMaX at 10x with clipping;
* ``class_threshold``: kMaX and ReMaX evaluated at the demo's class
  confidence thresholds and at low ones (same weights), to tell masks that
  are wrong from masks whose class confidence is below the threshold (ReClass
  lowers the class targets, Eq. 3-4).

Every run is ``remax_tf.training.run_experiment("train_and_eval", ...)`` on a
config made from ``configs/demo/shapes_v2_remax.textproto`` by the override
lists below (``BASE_OVERRIDES``, then the variant's, then the seed's), in a
fresh subprocess. The data (``ABLATION_SHAPES``) and the pre-trained backbone
(``PRETRAIN``) are made by this script under ``--work_dir``. A diverged run (NaN/Inf loss)
is recorded with its step and loss term, and has no PQ.

Writes ``results.json``, ``table.md`` and ``convergence.png`` (and
``learning_rate.png`` when that group runs) to ``--output_dir``, prints the
table and, last, one JSON line with the headline numbers. Finished runs are
cached in ``--work_dir`` (keyed by their full override list), so an
interrupted run resumes; ``--fresh`` retrains.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import pathlib
import shutil
import statistics
import sys
import time
from typing import Callable
from typing import Dict
from typing import FrozenSet
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from remax_tf.benchmarking.harness import data_config  # noqa: E402
from remax_tf.benchmarking.harness import run_isolated_each  # noqa: E402
from remax_tf.benchmarking.seed_statistics import difference  # noqa: E402
from remax_tf.benchmarking.seed_statistics import difference_cell  # noqa: E402
from remax_tf.benchmarking.seed_statistics import finite_json  # noqa: E402
from remax_tf.benchmarking.seed_statistics import mean_std  # noqa: E402
from remax_tf.benchmarking.seed_statistics import mean_std_cell  # noqa: E402
from remax_tf.config.small_crop import crop_overrides  # noqa: E402
from remax_tf.data import shapes  # noqa: E402  (numpy and PIL only)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO_ROOT / "configs" / "demo" / "shapes_v2_remax.textproto"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "benchmarks" / "results" / "ablation_v2"
DEFAULT_WORK_DIR = "/tmp/remax_ablation"

# ---------------------------------------------------------------------------
# Data: shapes_panoptic_v2 (remax_tf.data.shapes.V2_CONFIG) at the ablation's
# crop. 97x97 (3 x 32 + 1, a valid kMaX crop): a 25x25 stride-4 output, so a
# thing of the smallest radius (8 px) is 4 output pixels across, at ~57% of
# the demo's 129 pixels per image.
CROP = 97
ABLATION_SHAPES = dict(dataclasses.asdict(shapes.V2_CONFIG), size=CROP, min_radius=8.0)
NUM_TRAIN_IMAGES = 1000
NUM_VAL_IMAGES = 150
DATA_SEED = 0
# The shared pre-trained backbone (remax_tf.training.pretrain_backbone with
# these settings; cached under --work_dir): both models start from it.
PRETRAIN = dict(
    backbone="kmax_mobilenet_v3_small",
    dataset="shapes_panoptic_v2",
    steps=1500,
    batch_size=64,
    num_images=8000,
)

# COCO's area limits (thing 400 / stuff 6400 pixels at 1281, DeepLab2
# evaluator) scaled to the crop: x (97 / 1281)^2.
THING_AREA_LIMIT = 2
STUFF_AREA_LIMIT = 37

# ---------------------------------------------------------------------------
# The ablation base model: the demo's ReMaX on shapes_panoptic_v2
# (MobileNetV3-Small from the pre-trained checkpoint, narrow pixel decoder, 64
# slots, AdamW 3e-3 with the paper's step schedule, no clipping), with six
# kMaX layers (two per stride 32/16/8) so that Table 3's 0/2/4/6 relaxed
# stages exist, evaluated with the demo's post-processing (thing / stuff class
# confidence 0.4 / 0.5). Every row uses this model.
BASE_OVERRIDES: Tuple[str, ...] = (
    *crop_overrides(CROP),
    "train_dataset_options.deterministic=true",
    # Short schedules: milder scale jitter, no copy-paste.
    "train_dataset_options.augmentations={min_scale_factor: 0.75, "
    "max_scale_factor: 1.25}",
    "train_dataset_options.augmentations.panoptic_copy_paste="
    "{panoptic_copy_paste_scale: 0.0}",
    "model_options.max_deeplab.transformer_decoder_num_blocks=[2, 2, 2]",
    # The shortest convergence point must not be all warm-up.
    "trainer_options.solver_options.warmup_steps=50",
    f"evaluator_options.thing_area_limit={THING_AREA_LIMIT}",
    f"evaluator_options.stuff_area_limit={STUFF_AREA_LIMIT}",
    "trainer_options.num_summary_images=0",
    "trainer_options.num_checkpoints_to_keep=1",
)
# Base learning rate of the demo config (AdamW), for the 10x rows.
BASE_LEARNING_RATE = 0.003
LEARNING_RATE_FACTOR = 10
# Trainer seeds 0 means "unseeded", so run seeds start at 1.
FIRST_SEED = 1


@dataclasses.dataclass(frozen=True)
class Variant:
    """One trained configuration.

    Attributes:
      overrides: Config overrides applied after ``BASE_OVERRIDES``.
      reference: The variant this one is defined against (``None``: the base).
      changes: The config fields (dotted paths) this variant changes with
        respect to ``reference``; the test checks exactly these differ.
    """

    overrides: Tuple[str, ...]
    reference: Optional[str]
    changes: FrozenSet[str]


def _remax(field: str, value) -> str:
    return f"model_options.remax.{field}={value}"


_SOLVER = "trainer_options.solver_options"
_LR10 = f"{_SOLVER}.base_learning_rate={BASE_LEARNING_RATE * LEARNING_RATE_FACTOR:g}"
_CLIP = f"{_SOLVER}.use_gradient_clipping=true"
_REDUCTION = "mask_id_sigmoid_reduction"


# Each variant: (name, reference, overrides): the reference's overrides plus
# these, which are exactly the fields it changes.
_VARIANT_DEFINITIONS: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    # kMaX-DeepLab: no ReMask, no ReClass, softmax mask-ID cross-entropy.
    ("kmax", "remax", (_remax("enabled", "false"),)),
    ("remax_softmax", "remax", (_remax("activation", "softmax"),)),
    # Table 2's "sigmoid without ReMaX": the sigmoid mask-ID loss only (no
    # relaxed layer, so no semantic heads; eta 0, so no ReClass).
    (
        "sigmoid_no_remax",
        "remax",
        (_remax("num_relaxed_stages", 0), _remax("eta", 0.0)),
    ),
    ("sigmoid_no_remax_clip", "sigmoid_no_remax", (_CLIP,)),
    # The sigmoid mask-ID loss summed over the slots instead of averaged.
    ("sigmoid_no_remax_sum", "sigmoid_no_remax", (_remax(_REDUCTION, "sum"),)),
    ("remax_sum", "remax", (_remax(_REDUCTION, "sum"),)),
    ("remax_stages_2", "remax", (_remax("num_relaxed_stages", 2),)),
    ("remax_stages_6", "remax", (_remax("num_relaxed_stages", 6),)),
    ("remax_eta_0", "remax", (_remax("eta", 0.0),)),
    ("remax_eta_0.05", "remax", (_remax("eta", 0.05),)),
    ("remax_eta_0.2", "remax", (_remax("eta", 0.2),)),
    ("remax_no_stop_gradient", "remax", (_remax("stop_gradient", "false"),)),
    ("remax_gt_semantic", "remax", (_remax("use_ground_truth_semantic", "true"),)),
    ("kmax_lr10", "kmax", (_LR10,)),
    ("kmax_lr10_clip", "kmax_lr10", (_CLIP,)),
    ("remax_lr10", "remax", (_LR10,)),
)


def _build_variants() -> Dict[str, Variant]:
    # ReMaX as in the paper: sigmoid, ReMask on the first 4 layers, eta 0.1,
    # stop-gradient, heads removed at inference (the demo config's defaults).
    variants = {"remax": Variant((), None, frozenset())}
    for name, reference, overrides in _VARIANT_DEFINITIONS:
        variants[name] = Variant(
            variants[reference].overrides + overrides,
            reference,
            frozenset(o.split("=", 1)[0] for o in overrides),
        )
    return variants


VARIANTS: Dict[str, Variant] = _build_variants()

# Evaluation-only changes. Table 5: run the ReMaX heads and ReMask at test.
KEEP_HEADS_AT_TEST = (_remax("keep_at_inference", "true"),)
# Class confidence thresholds low enough to keep every segment a briefly
# trained model is unsure of (the demo evaluates with thing 0.4, stuff 0.5).
LOW_CLASS_THRESHOLD = 0.2
LOW_CLASS_THRESHOLDS = (
    "evaluator_options.maskwise_postprocessing="
    f"{{transformer_class_confidence_threshold_thing: {LOW_CLASS_THRESHOLD}, "
    f"transformer_class_confidence_threshold_stuff: {LOW_CLASS_THRESHOLD}}}",
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a result table: a variant, optionally evaluated with extra
    evaluation-only overrides, beside the paper's number."""

    group: str
    label: str
    variant: str
    paper: str = ""
    eval_overrides: Tuple[str, ...] = ()
    eval_tag: str = ""  # names ``eval_overrides`` in the result keys
    fraction: float = 1.0  # its schedule, as a fraction of Settings.steps

    @property
    def key(self) -> str:
        return self.variant + (f"+{self.eval_tag}" if self.eval_tag else "")


# ---------------------------------------------------------------------------
# The groups, one function each. Paper numbers are COCO val PQ, ResNet-50,
# 50K iterations (ReMaX paper Sec. 4.2, Tables 2-5 and 7).
# Points of the PQ-vs-steps curve, as fractions of the full schedule; each is
# its own full schedule (the last one is the table rows' run).
CURVE_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)


def convergence_rows(fractions: Sequence[float] = CURVE_FRACTIONS) -> List[Row]:
    # Fig. 4 / Sec. 4.2: ReMaX beats kMaX by 3.6 PQ (R50), 4.9 (MNV3-S) and
    # 5.2 (MNV3-L) at 50K iterations; ~2-3x faster convergence.
    rows = []
    for fraction in fractions:
        full = fraction == 1.0
        rows += [
            Row("convergence", "kMaX-DeepLab", "kmax", "baseline", fraction=fraction),
            Row(
                "convergence",
                "ReMaX",
                "remax",
                "+3.6 (R50), +4.9 (MNV3-S) at 50K" if full else "",
                fraction=fraction,
            ),
        ]
    return rows


def activation_clipping_rows() -> List[Row]:
    # Table 2: activation x ReMaX x gradient clipping.
    return [
        Row("activation_clipping", "softmax, no ReMaX, no clip", "kmax", "48.8"),
        Row("activation_clipping", "softmax, ReMaX, no clip", "remax_softmax", "49.5"),
        Row(
            "activation_clipping",
            "sigmoid, no ReMaX, no clip",
            "sigmoid_no_remax",
            "50.4",
        ),
        Row(
            "activation_clipping",
            "sigmoid, no ReMaX, clip",
            "sigmoid_no_remax_clip",
            "51.2",
        ),
        Row("activation_clipping", "sigmoid, ReMaX, no clip", "remax", "52.4"),
    ]


def num_remask_rows() -> List[Row]:
    # Table 3: ReMask on the first N transformer-decoder layers.
    return [
        # The paper's 0-ReMask row (50.4) equals Table 2's "sigmoid, w/o
        # ReMaX": no relaxed layer and no ReClass, i.e. the same run.
        Row("num_remask", "0 ReMasks", "sigmoid_no_remax", "50.4"),
        Row("num_remask", "2 ReMasks", "remax_stages_2", "51.9"),
        Row("num_remask", "4 ReMasks", "remax", "52.4"),
        Row("num_remask", "6 ReMasks", "remax_stages_6", "51.5"),
    ]


def eta_rows() -> List[Row]:
    # Table 4: ReClass eta (0.01 -> 51.7 in the paper is not run here).
    return [
        Row("eta", "eta 0", "remax_eta_0", "51.7"),
        Row("eta", "eta 0.05", "remax_eta_0.05", "51.9"),
        Row("eta", "eta 0.1", "remax", "52.4"),
        Row("eta", "eta 0.2", "remax_eta_0.2", "51.5"),
    ]


def head_at_test_rows() -> List[Row]:
    # Table 5 (with identity mapping): heads removed 52.4, kept 52.4. The
    # variant without identity mapping (51.9 / 52.1) has no switch here.
    return [
        Row("head_at_test", "semantic heads removed at test", "remax", "52.4"),
        Row(
            "head_at_test",
            "semantic heads + ReMask kept at test",
            "remax",
            "52.4",
            KEEP_HEADS_AT_TEST,
            "keep_heads",
        ),
    ]


def stop_gradient_rows() -> List[Row]:
    # Table 7: stop-gradient 52.4; ground-truth semantic masks 45.1; no
    # stop-gradient 36.6 ("does not converge well").
    return [
        Row("stop_gradient", "stop-gradient (ReMaX)", "remax", "52.4"),
        Row(
            "stop_gradient", "ground-truth semantic masks", "remax_gt_semantic", "45.1"
        ),
        Row("stop_gradient", "no stop-gradient", "remax_no_stop_gradient", "36.6"),
    ]


def learning_rate_rows() -> List[Row]:
    # Paper Sec. 4.2: ReMaX trains at 6e-3, over 10x kMaX's
    # 5e-4, and Table 2: without clipping.
    lr, lr10 = BASE_LEARNING_RATE, BASE_LEARNING_RATE * LEARNING_RATE_FACTOR
    return [
        Row("learning_rate", f"kMaX, lr {lr:g}, no clip", "kmax"),
        Row("learning_rate", f"kMaX, lr {lr10:g}, no clip", "kmax_lr10"),
        Row("learning_rate", f"kMaX, lr {lr10:g}, clip", "kmax_lr10_clip"),
        Row("learning_rate", f"ReMaX, lr {lr:g}, no clip", "remax"),
        Row("learning_rate", f"ReMaX, lr {lr10:g}, no clip", "remax_lr10", "finite"),
    ]


def class_threshold_rows() -> List[Row]:
    # Not a paper table: the same weights at two post-processing settings.
    low = f"class confidence >= {LOW_CLASS_THRESHOLD:g}"
    return [
        Row("class_threshold", "kMaX, thing 0.4 / stuff 0.5", "kmax"),
        Row(
            "class_threshold",
            f"kMaX, {low}",
            "kmax",
            "",
            LOW_CLASS_THRESHOLDS,
            "low_thr",
        ),
        Row("class_threshold", "ReMaX, thing 0.4 / stuff 0.5", "remax"),
        Row(
            "class_threshold",
            f"ReMaX, {low}",
            "remax",
            "",
            LOW_CLASS_THRESHOLDS,
            "low_thr",
        ),
    ]


def mask_id_reduction_rows() -> List[Row]:
    # Not a paper table (the paper does not say how the sigmoid mask-ID loss
    # reduces over slots): sum vs mean, without and with ReMaX, beside kMaX.
    return [
        Row("mask_id_reduction", "softmax (kMaX)", "kmax"),
        Row("mask_id_reduction", "sigmoid sum, no ReMaX", "sigmoid_no_remax_sum"),
        Row("mask_id_reduction", "sigmoid mean, no ReMaX", "sigmoid_no_remax"),
        Row("mask_id_reduction", "sigmoid sum, ReMaX", "remax_sum"),
        Row("mask_id_reduction", "sigmoid mean, ReMaX", "remax"),
    ]


GROUPS: Dict[str, Callable[[], List[Row]]] = {
    "convergence": convergence_rows,
    "activation_clipping": activation_clipping_rows,
    "num_remask": num_remask_rows,
    "eta": eta_rows,
    "head_at_test": head_at_test_rows,
    "stop_gradient": stop_gradient_rows,
    "learning_rate": learning_rate_rows,
    "class_threshold": class_threshold_rows,
    "mask_id_reduction": mask_id_reduction_rows,
}
# The heading of each group's table.
GROUP_TITLES: Dict[str, str] = {
    "convergence": "kMaX vs ReMaX (paper Fig. 4 / Table 1)",
    "activation_clipping": "Activation and gradient clipping (paper Table 2)",
    "num_remask": "Number of ReMasks (paper Table 3)",
    "eta": "ReClass eta (paper Table 4)",
    "head_at_test": "Semantic heads at test time (paper Table 5)",
    "stop_gradient": "Stop-gradient and ground-truth masks (paper Table 7)",
    "learning_rate": "Learning rate without clipping",
    "class_threshold": "Class confidence threshold at evaluation (same weights)",
    "mask_id_reduction": "Sigmoid mask-ID loss: sum or mean over the slots (not in the paper)",
}
# Variants of the convergence plot.
CURVE_VARIANTS = ("kmax", "remax")


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
        f"{_SOLVER}.training_number_of_steps={steps}",
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


# ---------------------------------------------------------------------------
# One run (in a subprocess).
def _load(overrides: Sequence[str], data_dir: str):
    return data_config(str(BASE_CONFIG), overrides, os.path.dirname(data_dir))


def _recorded_metrics(metrics: Dict[str, object]) -> Dict[str, float]:
    """The evaluation metrics a run records, as floats."""
    return {
        k: float(metrics[k])
        for k in (
            "pq",
            "pq_things",
            "pq_stuff",
            "pq_things_class_agnostic",
            "sq",
            "rq",
            "miou",
        )
        if k in metrics
    }


def _metrics_by_step(eval_dir: str) -> Dict[int, Dict[str, float]]:
    out = {}
    for path in glob.glob(os.path.join(eval_dir, "metrics_step_*.json")):
        with open(path) as f:
            metrics = json.load(f)
        out[int(metrics["global_step"])] = _recorded_metrics(metrics)
    return dict(sorted(out.items()))


def run_job(
    job: Dict[str, object], data_dir: str, work_dir: str, threads: int, grappler: bool
):
    """Trains and evaluates one (variant, seed); returns a JSON-able dict."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if not grappler:
        # Graph optimisation is a large part of the start-up of a short run.
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    from remax_tf.training import NonFiniteLossError
    from remax_tf.training import run_experiment

    model_dir = os.path.join(work_dir, "runs", job["name"])
    shutil.rmtree(model_dir, ignore_errors=True)
    config = _load(job["overrides"], data_dir)
    losses: List[Tuple[int, float]] = []
    rates: List[float] = []
    start = time.time()
    first_progress: List[float] = []

    def progress(stats):
        if not first_progress:
            first_progress.append(time.time() - start)
        losses.append((int(stats["step"]), float(stats["loss"])))
        rates.append(float(stats["steps_per_second"]))
        print(
            f"[{job['name']}] step {int(stats['step'])} loss {stats['loss']:.4f} "
            f"({stats['steps_per_second']:.2f} steps/s, {time.time() - start:.0f} s)",
            flush=True,
        )

    result = dict(job, diverged=None)
    try:
        run_experiment("train_and_eval", config, model_dir, progress=progress)
    except NonFiniteLossError as e:
        result["diverged"] = {"step": e.step, "term": e.term}
    workdir = os.path.join(model_dir, config.experiment_name)
    result["curve"] = {
        str(k): v for k, v in _metrics_by_step(os.path.join(workdir, "eval")).items()
    }
    steps = config.trainer_options.solver_options.training_number_of_steps
    final = result["curve"].get(str(steps)) if result["diverged"] is None else None
    result["final"] = final
    result["losses"] = losses
    result["train_seconds"] = time.time() - start
    # Steady-state rate: the loops after the first (which includes tracing).
    result["steps_per_second"] = statistics.median(rates[1:] or rates or [0.0])
    result["seconds_to_first_loop"] = first_progress[0] if first_progress else None
    result["extra"] = {}
    for evals in job["extra_evals"] if final is not None else []:
        eval_config = _load(list(job["overrides"]) + list(evals), data_dir)
        metrics = run_experiment("eval", eval_config, model_dir)["metrics"]
        result["extra"]["+".join(evals)] = _recorded_metrics(metrics)
    result["wall_seconds"] = time.time() - start
    shutil.rmtree(model_dir, ignore_errors=True)
    return result


def _cache_path(work_dir: str, job: dict) -> str:
    return os.path.join(work_dir, "results", job["name"] + ".json")


def run_jobs(
    jobs: Sequence[dict],
    data_dir: str,
    work_dir: str,
    workers: int,
    fresh: bool,
    grappler: bool = True,
) -> List[dict]:
    """Runs the jobs (cached results reused), ``workers`` at a time, each in
    its own spawned process (a fresh TensorFlow: graphs do not pile up)."""
    from remax_tf.json_io import write_json_atomic

    os.makedirs(os.path.join(work_dir, "results"), exist_ok=True)
    done, todo = {}, []
    for job in jobs:
        path = _cache_path(work_dir, job)
        if not fresh and os.path.exists(path):
            with open(path) as f:
                cached = json.load(f)
            if (
                cached.get("overrides") == job["overrides"]
                and cached.get("extra_evals") == job["extra_evals"]
            ):
                done[job["name"]] = cached
                continue
        todo.append(job)
    if done:
        print(f"[ablation] {len(done)} run(s) reused from {work_dir}/results")
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    calls = [(job, data_dir, work_dir, threads, grappler) for job in todo]
    for index, future in run_isolated_each(run_job, calls, workers):
        job = todo[index]
        result = future.result()
        # Atomic: an interrupted run leaves no half-written cache entry.
        write_json_atomic(_cache_path(work_dir, job), result)
        done[job["name"]] = result
        pq = result["final"]["pq"] * 100 if result["final"] else float("nan")
        print(
            f"[ablation] done {job['name']}: PQ {pq:.2f}, "
            f"{result['wall_seconds']:.0f} s, diverged {result['diverged']} "
            f"({len(done)}/{len(jobs)})",
            flush=True,
        )
    return [done[j["name"]] for j in jobs]


# ---------------------------------------------------------------------------
# Aggregation and reporting.
METRICS = ("pq", "pq_things", "pq_stuff", "pq_things_class_agnostic")


def _row_metrics(row: Row, run: dict) -> Optional[Dict[str, float]]:
    if run["final"] is None:
        return None
    if row.eval_overrides:
        return run["extra"].get("+".join(row.eval_overrides))
    return run["final"]


def aggregate(
    rows: Sequence[Row], runs: Sequence[dict], settings: Settings
) -> List[dict]:
    """Per row: mean ± std of PQ (and things / stuff) in points over the
    finished seeds of its (variant, steps), and the diverged runs."""
    by_job: Dict[Tuple[str, int], List[dict]] = {}
    for run in runs:
        by_job.setdefault((run["variant"], run["steps"]), []).append(run)
    table = []
    for row in rows:
        steps = row_steps(row, settings)
        row_runs = by_job.get((row.variant, steps), [])
        metrics = [m for m in (_row_metrics(row, r) for r in row_runs) if m]
        entry = dict(
            group=row.group,
            label=row.label,
            variant=row.variant,
            key=f"{row.key}@{steps}",
            steps=steps,
            paper=row.paper,
            overrides=list(VARIANTS[row.variant].overrides) + list(row.eval_overrides),
            seeds=len(row_runs),
            diverged=[
                dict(seed=r["seed"], **r["diverged"]) for r in row_runs if r["diverged"]
            ],
        )
        for name in METRICS:
            values = [100.0 * m[name] for m in metrics if name in m]
            entry[name], entry[f"{name}_std"] = mean_std(values)
            entry[f"{name}_values"] = values
        table.append(entry)
    return table


def curves(
    rows: Sequence[Row], runs: Sequence[dict], settings: Settings
) -> Dict[str, Dict[str, object]]:
    """Per curve variant: the convergence rows' schedules (steps) and, at
    each, the per-metric mean / std over the finished seeds, in points. A
    metric missing from a run (older cache) counts as missing, not zero."""
    out = {}
    for variant in CURVE_VARIANTS:
        steps = sorted(
            {
                row_steps(r, settings)
                for r in rows
                if r.group == "convergence" and r.variant == variant
            }
        )
        finals = {
            s: [
                r["final"]
                for r in runs
                if r["variant"] == variant and r["steps"] == s and r["final"]
            ]
            for s in steps
        }
        if not any(finals.values()):
            continue
        entry: Dict[str, object] = {
            "steps": steps,
            "seeds": [len(finals[s]) for s in steps],
        }
        for name in METRICS:
            stats = [
                mean_std([100.0 * f[name] for f in finals[s] if name in f])
                for s in steps
            ]
            entry[name] = [m for m, _ in stats]
            entry[f"{name}_std"] = [s for _, s in stats]
        out[variant] = entry
    return out


def format_tables(table: Sequence[dict], curve: Dict[str, dict]) -> str:
    titles = GROUP_TITLES
    lines: List[str] = []
    for group in dict.fromkeys(e["group"] for e in table):
        lines += [
            f"**{titles[group]}**",
            "",
            "| row | paper (COCO PQ) | PQ | PQ things | PQ stuff "
            "| PQ things, class-agnostic | diverged |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in (e for e in table if e["group"] == group):
            diverged = (
                ", ".join(f"seed {d['seed']} @ step {d['step']}" for d in e["diverged"])
                or "0"
            )
            lines.append(
                f"| {e['label']} | {e['paper'] or '–'} | "
                f"{mean_std_cell(e['pq'], e['pq_std'])} | "
                f"{mean_std_cell(e['pq_things'], e['pq_things_std'])} | "
                f"{mean_std_cell(e['pq_stuff'], e['pq_stuff_std'])} | "
                f"{mean_std_cell(e['pq_things_class_agnostic'], e['pq_things_class_agnostic_std'])} | "
                f"{diverged} / {e['seeds']} |"
            )
        lines.append("")
    if curve:
        names = list(curve)
        steps = curve[names[0]]["steps"]
        header = [f"{n} {m}" for m in ("PQ", "PQ things") for n in names]
        both = "kmax" in curve and "remax" in curve
        if both:
            header += ["ReMaX - kMaX, PQ", "ReMaX - kMaX, PQ things"]
        lines += [
            "**PQ vs steps: each step count its own full schedule "
            "(mean ± std over seeds)**",
            "",
            "| steps | " + " | ".join(header) + " |",
            "|---" * (len(header) + 1) + "|",
        ]
        for i, step in enumerate(steps):
            cells = [
                mean_std_cell(curve[n][m][i], curve[n][f"{m}_std"][i])
                for m in ("pq", "pq_things")
                for n in names
            ]
            if both:
                cells += [
                    difference_cell(*gap(curve["remax"], curve["kmax"], m, i))
                    for m in ("pq", "pq_things")
                ]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def gap(a: dict, b: dict, metric: str, i: int) -> Tuple[float, float]:
    """Mean of curve ``a`` minus mean of curve ``b`` at point ``i`` and the
    standard error of that difference (``seed_statistics.difference``: NaN
    with < 2 seeds on either side)."""

    def point(c: dict) -> Tuple[float, float, int]:
        return c[metric][i], c[f"{metric}_std"][i], c["seeds"][i]

    return difference(point(a), point(b))


def plot_convergence(curve: Dict[str, dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"kmax": "kMaX-DeepLab", "remax": "ReMaX"}
    colours = {"kmax": "tab:blue", "remax": "tab:red"}
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    titles = ("PQ", "PQ things", "PQ stuff", "PQ things, class-agnostic")
    for ax, name, title in zip(axes, METRICS, titles, strict=True):
        for variant, c in curve.items():
            steps = c["steps"]
            mean = c[name]
            std = [0.0 if math.isnan(s) else s for s in c[f"{name}_std"]]
            seeds = max(c["seeds"])
            ax.plot(
                steps,
                mean,
                "o-",
                color=colours[variant],
                label=f"{labels[variant]} ({seeds} seeds)",
            )
            ax.fill_between(
                steps,
                [m - s for m, s in zip(mean, std)],
                [m + s for m, s in zip(mean, std)],
                color=colours[variant],
                alpha=0.2,
            )
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("val PQ (%)")
    axes[0].legend()
    fig.suptitle(
        "shapes_panoptic_v2, pre-trained backbone: PQ vs schedule length "
        "(each point its own schedule), mean ± std over seeds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_rate(runs: Sequence[dict], steps: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    styles = {
        "kmax": ("tab:blue", "-"),
        "kmax_lr10": ("tab:blue", "--"),
        "kmax_lr10_clip": ("tab:cyan", ":"),
        "remax": ("tab:red", "-"),
        "remax_lr10": ("tab:red", "--"),
    }
    for variant, (colour, style) in styles.items():
        chosen = [r for r in runs if r["variant"] == variant and r["steps"] == steps]
        for i, run in enumerate(chosen):
            if not run["losses"]:
                continue
            at, values = zip(*run["losses"])
            relative = [v / values[0] for v in values]
            ax.plot(
                at,
                relative,
                style,
                color=colour,
                alpha=0.8,
                label=variant if i == 0 else None,
            )
            if run["diverged"]:  # NaN/Inf in the loop after the last point
                ax.plot(at[-1], relative[-1], "x", color=colour, markersize=9)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    # The ReMaX loss has more terms than kMaX's: compare relative changes.
    ax.set_ylabel("training loss / its first-loop value")
    ax.set_title("Loss at 1x and 10x learning rate (x: diverged)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
def build_backbone(data_dir: str, pretrain_steps: int) -> Dict[str, object]:
    """Pre-trains (once, cached) the backbone every run starts from; returns
    its record (checkpoint, validation accuracy, seconds)."""
    from remax_tf.training import pretrain_backbone

    request = pretrain_backbone.PretrainRequest(**dict(PRETRAIN, steps=pretrain_steps))
    record = pretrain_backbone.pretrain(
        request, pretrained_dir(data_dir, pretrain_steps)
    )
    return {k: record[k] for k in ("request", "val_accuracy", "seconds")}


def build_data(work_dir: str) -> str:
    """Generates (once) the ablation's shapes_panoptic_v2."""
    data_dir = os.path.join(work_dir, "data", "shapes_v2_ablation")
    # Keeps the shards of an identical earlier request, replaces any other.
    shapes.generate(
        data_dir,
        NUM_TRAIN_IMAGES,
        NUM_VAL_IMAGES,
        DATA_SEED,
        shapes.ShapesConfig(**ABLATION_SHAPES),
        num_workers=1,
    )
    return data_dir


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (minutes)")
    parser.add_argument(
        "--steps", type=int, help=f"training steps per run (default {FULL.steps})"
    )
    parser.add_argument(
        "--curve_fractions",
        help="comma-separated schedule lengths of the convergence rows as "
        f"fractions of --steps (default {','.join(map(str, CURVE_FRACTIONS))})",
    )
    parser.add_argument(
        "--budget_minutes",
        type=float,
        help="scale --steps so the estimated wall time fits",
    )
    parser.add_argument("--seeds", type=int, help="seeds per variant (>= 3 for std)")
    parser.add_argument(
        "--rows",
        help=f"comma-separated groups (default all; --quick: {','.join(QUICK_GROUPS)}); "
        f"known: {','.join(GROUPS)}",
    )
    parser.add_argument(
        "--output_dir",
        help=f"default {DEFAULT_OUTPUT_DIR.relative_to(REPO_ROOT)} (the recorded "
        "results); --quick: WORK_DIR/quick, so a smoke run never replaces them",
    )
    parser.add_argument("--work_dir", default=DEFAULT_WORK_DIR)
    parser.add_argument("--workers", type=int, default=2, help="parallel runs")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument(
        "--grappler",
        action="store_true",
        help="keep TensorFlow's graph optimiser on (off by default: it adds "
        "about 40 s to the start-up of every run and did not change the "
        "step rate of these small models)",
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.output_dir is None:
        quick_dir = os.path.join(args.work_dir, "quick")
        args.output_dir = quick_dir if args.quick else str(DEFAULT_OUTPUT_DIR)
    settings = dataclasses.replace(QUICK if args.quick else FULL)
    if args.seeds:
        settings.seeds = args.seeds
    groups = (
        args.rows.split(",")
        if args.rows
        else list(QUICK_GROUPS if args.quick else GROUPS)
    )
    if args.curve_fractions:
        settings.curve_fractions = tuple(
            float(f) for f in args.curve_fractions.split(",") if f.strip()
        )
    rows = select_rows(
        [g.strip() for g in groups if g.strip()], settings.curve_fractions
    )
    data_dir = os.path.join(args.work_dir, "data", "shapes_v2_ablation")
    if args.steps:
        settings.steps = args.steps
    if args.budget_minutes:
        # Scale the schedule so that the estimate fits the budget.
        def minutes(steps: int) -> float:
            scaled = dataclasses.replace(settings, steps=steps)
            return estimate_minutes(plan_jobs(rows, scaled, data_dir))

        fixed, per_unit = minutes(0), minutes(1000) - minutes(0)
        settings.steps = max(10, int(1000 * (args.budget_minutes - fixed) / per_unit))
    jobs = plan_jobs(rows, settings, data_dir)
    print(
        f"[ablation] {len(jobs)} runs ({len(set(j['variant'] for j in jobs))} "
        f"variants x {settings.seeds} seeds), {settings.steps} steps each "
        "(the convergence rows: "
        f"{sorted({row_steps(r, settings) for r in rows if r.group == 'convergence'})}"
        f"); estimated {estimate_minutes(jobs):.0f} min",
        flush=True,
    )
    from remax_tf.json_io import write_json_atomic

    start = time.time()
    build_data(args.work_dir)
    backbone = build_backbone(data_dir, settings.pretrain_steps)
    runs = run_jobs(
        jobs, data_dir, args.work_dir, args.workers, args.fresh, args.grappler
    )
    wall = time.time() - start
    table = aggregate(rows, runs, settings)
    curve = curves(rows, runs, settings)
    text = format_tables(table, curve)
    os.makedirs(args.output_dir, exist_ok=True)
    command = "python benchmarks/ablation.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    results = dict(
        command=command.strip(),
        wall_seconds=wall,
        settings=dataclasses.asdict(settings),
        data=dict(
            ABLATION_SHAPES,
            num_train=NUM_TRAIN_IMAGES,
            num_val=NUM_VAL_IMAGES,
            seed=DATA_SEED,
        ),
        pretrained_backbone=backbone,
        base_config=str(BASE_CONFIG.relative_to(REPO_ROOT)),
        base_overrides=list(BASE_OVERRIDES),
        rows=table,
        curves=curve,
        runs=[
            {k: v for k, v in r.items() if k not in ("overrides", "extra_evals")}
            for r in runs
        ],
    )
    write_json_atomic(
        os.path.join(args.output_dir, "results.json"), finite_json(results), indent=1
    )
    with open(os.path.join(args.output_dir, "table.md"), "w") as f:
        f.write(text + "\n")
    if curve:
        plot_convergence(curve, os.path.join(args.output_dir, "convergence.png"))
    if any(r.group == "learning_rate" for r in rows):
        plot_learning_rate(
            runs, settings.steps, os.path.join(args.output_dir, "learning_rate.png")
        )
    print(text)
    print(f"[ablation] wall time {wall / 60:.1f} min; outputs in {args.output_dir}")
    print(
        json.dumps(
            finite_json(
                {
                    "wall_minutes": round(wall / 60, 1),
                    "steps": settings.steps,
                    "curve_fractions": list(settings.curve_fractions),
                    "seeds": settings.seeds,
                    "pq": {e["key"]: round(e["pq"], 2) for e in table},
                    "pq_std": {e["key"]: round(e["pq_std"], 2) for e in table},
                    "diverged": {e["key"]: len(e["diverged"]) for e in table},
                }
            )
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
