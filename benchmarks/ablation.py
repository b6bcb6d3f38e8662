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
lists of ``ablation_study/rows.py`` (``BASE_OVERRIDES``, then the variant's, then the seed's), in a
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
import json
import os
import pathlib
import sys
import time
from typing import Optional
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The parts live in ablation_study/ beside this script (also when a test
# loads the script by its path).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ablation_study import CURVE_FRACTIONS  # noqa: E402
from ablation_study import FULL  # noqa: E402
from ablation_study import GROUPS  # noqa: E402
from ablation_study import QUICK  # noqa: E402
from ablation_study import QUICK_GROUPS  # noqa: E402
from ablation_study import aggregate  # noqa: E402
from ablation_study import build_backbone  # noqa: E402
from ablation_study import build_data  # noqa: E402
from ablation_study import curves  # noqa: E402
from ablation_study import estimate_minutes  # noqa: E402
from ablation_study import format_tables  # noqa: E402
from ablation_study import plan_jobs  # noqa: E402
from ablation_study import plot_convergence  # noqa: E402
from ablation_study import plot_learning_rate  # noqa: E402
from ablation_study import row_steps  # noqa: E402

# run_job: the worker processes of an earlier version look it up here.
from ablation_study import run_job  # noqa: E402, F401
from ablation_study import run_jobs  # noqa: E402
from ablation_study import select_rows  # noqa: E402
from ablation_study.rows import ABLATION_SHAPES  # noqa: E402
from ablation_study.rows import BASE_CONFIG  # noqa: E402
from ablation_study.rows import BASE_OVERRIDES  # noqa: E402
from ablation_study.rows import DATA_SEED  # noqa: E402
from ablation_study.rows import DEFAULT_OUTPUT_DIR  # noqa: E402
from ablation_study.rows import DEFAULT_WORK_DIR  # noqa: E402
from ablation_study.rows import NUM_TRAIN_IMAGES  # noqa: E402
from ablation_study.rows import NUM_VAL_IMAGES  # noqa: E402
from ablation_study.rows import REPO_ROOT  # noqa: E402

from remax_tf.benchmarking.seed_statistics import finite_json  # noqa: E402


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
