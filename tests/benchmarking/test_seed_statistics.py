"""remax_tf.benchmarking.seed_statistics: mean ± std over seeds, the
standard error of a difference, their table cells, strict JSON."""

import json
import math

import pytest

from remax_tf.benchmarking.seed_statistics import difference
from remax_tf.benchmarking.seed_statistics import difference_cell
from remax_tf.benchmarking.seed_statistics import finite_json
from remax_tf.benchmarking.seed_statistics import mean_std
from remax_tf.benchmarking.seed_statistics import mean_std_cell


def test_mean_and_sample_std():
    mean, std = mean_std([10.0, 30.0])
    assert mean == 20.0 and std == pytest.approx(math.sqrt(200))
    assert math.isnan(mean_std([1.0])[1])
    assert all(math.isnan(v) for v in mean_std([]))


def test_difference_and_its_standard_error():
    diff, error = difference((30.0, math.sqrt(200), 2), (20.0, math.sqrt(200), 2))
    assert diff == 10.0 and error == pytest.approx(math.sqrt(200))
    # One seed on a side: no standard deviation there, so no error.
    diff, error = difference((50.0, math.nan, 1), (30.0, 2.0, 2))
    assert diff == 20.0 and math.isnan(error)
    assert math.isnan(difference((1.0, 1.0, 0), (1.0, 1.0, 2))[1])


def test_cells():
    assert mean_std_cell(52.04, 2.0) == "52.0 ± 2.0"
    assert mean_std_cell(52.04, math.nan) == "52.0"
    assert mean_std_cell(math.nan, math.nan) == "–"
    assert difference_cell(10.0, math.sqrt(200)) == "+10.0 ± 14.1 (s.e.)"
    assert difference_cell(-2.25, math.nan) == "-2.2"
    assert difference_cell(math.nan, math.nan) == "–"


def test_finite_json_replaces_nan_recursively():
    value = {"a": math.nan, "b": [1.0, (math.nan, 2)], "c": {"d": math.nan}}
    assert finite_json(value) == {"a": None, "b": [1.0, [None, 2]], "c": {"d": None}}
    json.dumps(finite_json(value), allow_nan=False)
