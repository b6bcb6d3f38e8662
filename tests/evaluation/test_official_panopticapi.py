"""Our COCO panoptic scorer against the official panopticapi ``pq_compute``.

Runs only when the environment variable ``PANOPTICAPI_ROOT`` names a checkout
of https://github.com/cocodataset/panopticapi (nothing of it is copied into
this repository)::

  PANOPTICAPI_ROOT=/path/to/panopticapi pytest tests/evaluation/test_official_panopticapi.py

The cases are those of ``test_coco_panoptic.py``, run unchanged: that module
is imported, and while each of its PQ cases runs, every PQ it computes (our
``pq_compute``, directly or through the command line, and its independent
reference) is also computed by the official ``pq_compute`` on the same files
and compared with ours to 1e-9 (All / Things / Stuff PQ, SQ, RQ, N and every
per-class value).
"""

import contextlib
import importlib.util
import inspect
import io
import itertools
import os
import pathlib
import sys

import pytest

from remax_tf.evaluation import coco_panoptic

ROOT_VARIABLE = "PANOPTICAPI_ROOT"
TOLERANCE = 1e-9
# Cases of test_coco_panoptic.py that compute no PQ of valid predictions in
# this process; every other test function there is a case here.
NOT_PQ_CASES = {
    "test_command_line_prints_the_table": "scores in a subprocess (our CLI output)",
    "test_inconsistent_predictions_raise": "checks our error messages",
    "test_id_png_round_trip": "computes no PQ",
}

_root = os.environ.get(ROOT_VARIABLE)
if not _root:
    pytest.skip(
        f"{ROOT_VARIABLE} is not set; set it to a checkout of "
        "https://github.com/cocodataset/panopticapi to compare with the official "
        "pq_compute.",
        allow_module_level=True,
    )
if not os.path.isfile(os.path.join(_root, "panopticapi", "evaluation.py")):
    raise FileNotFoundError(
        f"{ROOT_VARIABLE}={_root} is not a panopticapi checkout: "
        f"{_root}/panopticapi/evaluation.py does not exist."
    )
sys.path.insert(0, _root)
from panopticapi.evaluation import pq_compute as official_pq_compute  # noqa: E402


def _load_cases():
    """test_coco_panoptic.py as a module of its own (its cases and fixtures)."""
    path = pathlib.Path(__file__).with_name("test_coco_panoptic.py")
    spec = importlib.util.spec_from_file_location("coco_panoptic_pq_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load_cases()
sample = cases.sample  # The fixture the cases use.


def _parametrizations(function):
    """Every keyword set the function's ``parametrize`` marks produce."""
    grids = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = (
            [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        )
        rows = [v if len(names) > 1 else (v,) for v in values]
        grids.append([dict(zip(names, row)) for row in rows])
    return [
        {k: v for part in combination for k, v in part.items()}
        for combination in itertools.product(*grids)
    ]


def _pq_cases():
    found = []
    for name, function in vars(cases).items():
        if not name.startswith("test_") or name in NOT_PQ_CASES:
            continue
        for params in _parametrizations(function):
            suffix = "-".join(str(v) for v in params.values())
            found.append(
                pytest.param(
                    function, params, id=f"{name}[{suffix}]" if suffix else name
                )
            )
    return found


CASES = _pq_cases()


def _official(gt_json, pred_json, gt_folder, pred_folder):
    with contextlib.redirect_stdout(io.StringIO()):
        return official_pq_compute(gt_json, pred_json, gt_folder, pred_folder)


def assert_equal_to_official(official, ours, where):
    for name in ("All", "Things", "Stuff"):
        assert official[name]["n"] == ours[name]["n"], (where, name)
        for metric in ("pq", "sq", "rq"):
            difference = abs(official[name][metric] - ours[name][metric])
            assert difference <= TOLERANCE, (
                where,
                name,
                metric,
                official[name],
                ours[name],
            )
    ours_per_class = {int(k): v for k, v in ours["per_class"].items()}
    assert set(official["per_class"]) == set(ours_per_class), where
    for category_id, values in official["per_class"].items():
        for metric in ("pq", "sq", "rq"):
            difference = abs(values[metric] - ours_per_class[category_id][metric])
            assert difference <= TOLERANCE, (where, category_id, metric)


@pytest.fixture
def compare_with_official(monkeypatch):
    """While a case runs, each PQ it computes is also computed officially;
    returns the list of comparisons made."""
    ours_pq_compute = coco_panoptic.pq_compute
    signature = inspect.signature(ours_pq_compute)
    comparisons = []

    def compare(gt_json, pred_json, gt_folder, pred_folder, ours):
        official = _official(gt_json, pred_json, gt_folder, pred_folder)
        assert_equal_to_official(official, ours, (gt_json, pred_json))
        comparisons.append(pred_json)

    def pq_compute(*args, **kwargs):
        ours = ours_pq_compute(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        compare(
            a["gt_json_file"],
            a["pred_json_file"],
            a["gt_folder"],
            a["pred_folder"],
            ours,
        )
        return ours

    reference_pq = cases.reference_pq

    def checked_reference_pq(gt_json, gt_folder, pred_json, pred_folder):
        ours = ours_pq_compute(
            gt_json, pred_json, gt_folder, pred_folder, verbose=False
        )
        compare(gt_json, pred_json, gt_folder, pred_folder, ours)
        return reference_pq(gt_json, gt_folder, pred_json, pred_folder)

    # The command line and the cases look pq_compute up in coco_panoptic.
    monkeypatch.setattr(coco_panoptic, "pq_compute", pq_compute)
    monkeypatch.setattr(cases, "reference_pq", checked_reference_pq)
    return comparisons


def test_cases_were_found():
    names = {p.values[0].__name__ for p in CASES}
    assert len(CASES) >= 20 and "test_random_perturbations" in names
    assert not set(NOT_PQ_CASES) - set(vars(cases)), "stale NOT_PQ_CASES entries"


@pytest.mark.parametrize("function, params", CASES)
def test_official_pq_compute_equals_ours(
    function, params, tmp_path, sample, compare_with_official
):
    available = {"tmp_path": tmp_path, "sample": sample, **params}
    arguments = inspect.signature(function).parameters
    missing = set(arguments) - set(available)
    assert not missing, f"{function.__name__} needs fixtures {missing}; add them here"
    function(**{name: available[name] for name in arguments})
    assert compare_with_official, (
        f"{function.__name__} computed no PQ; list it in NOT_PQ_CASES"
    )
