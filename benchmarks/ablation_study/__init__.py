"""The parts of ``benchmarks/ablation.py`` (its command line and docstring
are there): ``rows`` (data, base model, variants, rows), ``plan`` (schedule
and jobs), ``runs`` (one run, the cached runs), ``report`` (aggregation,
tables, plots)."""

from .plan import FULL
from .plan import QUICK
from .plan import QUICK_GROUPS
from .plan import Settings
from .plan import data_overrides
from .plan import estimate_minutes
from .plan import plan_jobs
from .plan import row_steps
from .plan import seed_overrides
from .plan import select_rows
from .report import aggregate
from .report import curves
from .report import format_tables
from .report import gap
from .report import plot_convergence
from .report import plot_learning_rate
from .rows import ABLATION_SHAPES
from .rows import BASE_CONFIG
from .rows import BASE_OVERRIDES
from .rows import CURVE_FRACTIONS
from .rows import DATA_SEED
from .rows import DEFAULT_OUTPUT_DIR
from .rows import DEFAULT_WORK_DIR
from .rows import GROUP_TITLES
from .rows import GROUPS
from .rows import KEEP_HEADS_AT_TEST
from .rows import LOW_CLASS_THRESHOLDS
from .rows import NUM_TRAIN_IMAGES
from .rows import NUM_VAL_IMAGES
from .rows import REPO_ROOT
from .rows import VARIANTS
from .rows import Row
from .rows import convergence_rows
from .rows import head_at_test_rows
from .runs import build_backbone
from .runs import build_data
from .runs import cache_path
from .runs import load_job_config
from .runs import reusable
from .runs import run_job
from .runs import run_jobs

__all__ = [
    "ABLATION_SHAPES",
    "BASE_CONFIG",
    "BASE_OVERRIDES",
    "CURVE_FRACTIONS",
    "DATA_SEED",
    "DEFAULT_OUTPUT_DIR",
    "DEFAULT_WORK_DIR",
    "FULL",
    "GROUPS",
    "GROUP_TITLES",
    "KEEP_HEADS_AT_TEST",
    "LOW_CLASS_THRESHOLDS",
    "NUM_TRAIN_IMAGES",
    "NUM_VAL_IMAGES",
    "QUICK",
    "QUICK_GROUPS",
    "REPO_ROOT",
    "VARIANTS",
    "Row",
    "Settings",
    "aggregate",
    "build_backbone",
    "build_data",
    "cache_path",
    "convergence_rows",
    "curves",
    "data_overrides",
    "estimate_minutes",
    "format_tables",
    "gap",
    "head_at_test_rows",
    "load_job_config",
    "plan_jobs",
    "plot_convergence",
    "plot_learning_rate",
    "row_steps",
    "run_job",
    "reusable",
    "run_jobs",
    "seed_overrides",
    "select_rows",
]
