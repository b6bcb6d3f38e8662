"""Aggregation of the runs (mean ± std over seeds per row and per curve
point), the markdown tables and the plots.
"""

from __future__ import annotations

import math
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

from remax_tf.benchmarking.seed_statistics import difference
from remax_tf.benchmarking.seed_statistics import difference_cell
from remax_tf.benchmarking.seed_statistics import mean_std
from remax_tf.benchmarking.seed_statistics import mean_std_cell

from .plan import Settings
from .plan import row_steps
from .rows import CURVE_VARIANTS
from .rows import GROUP_TITLES
from .rows import VARIANTS
from .rows import Row

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
