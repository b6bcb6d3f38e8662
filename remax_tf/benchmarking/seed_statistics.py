"""Repeated runs (seeds) reduced to mean ± std, and a difference of two means
with its standard error; their table cells; NaN-free JSON.

Used by ``benchmarks/ablation.py`` for its tables, curves and JSON.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence
from typing import Tuple


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (n - 1); std is NaN for one value,
    both NaN for none."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return mean, std


def difference(
    a: Tuple[float, float, int], b: Tuple[float, float, int]
) -> Tuple[float, float]:
    """Mean of ``a`` minus mean of ``b``, each ``(mean, std, n)``, and the
    standard error of that difference, sqrt(sa^2 / na + sb^2 / nb) (NaN when
    either std is NaN, i.e. fewer than 2 runs, or either n is 0)."""
    (mean_a, std_a, n_a), (mean_b, std_b, n_b) = a, b
    diff = mean_a - mean_b
    if math.isnan(std_a) or math.isnan(std_b) or not n_a or not n_b:
        return diff, math.nan
    return diff, math.sqrt(std_a * std_a / n_a + std_b * std_b / n_b)


def mean_std_cell(mean: float, std: float) -> str:
    """``"52.0 ± 2.0"``; the mean alone when std is NaN, ``"–"`` with no mean."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def difference_cell(diff: float, error: float) -> str:
    """``"+10.0 ± 14.1 (s.e.)"``; the signed difference alone when its error
    is NaN, ``"–"`` with no difference."""
    if math.isnan(diff):
        return "–"
    return f"{diff:+.1f}" if math.isnan(error) else f"{diff:+.1f} ± {error:.1f} (s.e.)"


def finite_json(value):
    """``value`` with NaN floats replaced by None, recursively (strict JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value
