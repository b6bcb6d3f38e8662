"""benchmarks/ablation.py (its parts in benchmarks/ablation_study/): each row
trains what it claims; mean ± std is right; its jobs keep their cache keys.

No training here: the configs are loaded (protos only) and the aggregation
runs on hand-made run records.
"""

import importlib.util
import json
import math
import os
import sys

import pytest

from remax_tf.benchmarking.seed_statistics import mean_std

DATA_DIR = "/tmp/ablation_test/data/shapes_v2_ablation"


@pytest.fixture(scope="module")
def ablation(repo_root):
    """benchmarks/ablation_study: the parts of benchmarks/ablation.py."""
    sys.path.insert(0, str(repo_root / "benchmarks"))
    import ablation_study

    yield ablation_study
    sys.path.remove(str(repo_root / "benchmarks"))


def test_the_script_keeps_its_command_line(repo_root):
    spec = importlib.util.spec_from_file_location(
        "ablation_script", repo_root / "benchmarks" / "ablation.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = script.parse_args([])
    assert (args.quick, args.steps, args.seeds, args.rows, args.workers) == (
        False,
        None,
        None,
        None,
        2,
    )
    assert args.work_dir == "/tmp/remax_ablation" and not args.fresh
    # Worker processes spawned by an earlier version look run_job up there.
    assert script.run_job.__module__ == "ablation_study.runs"


def _changed_fields(a, b, prefix=""):
    """Dotted paths of the scalar / repeated fields that differ."""
    names = {f.name for f, _ in a.ListFields()} | {f.name for f, _ in b.ListFields()}
    changed = set()
    for name in sorted(names):
        field = a.DESCRIPTOR.fields_by_name[name]
        path = prefix + name
        if field.message_type is not None and not field.is_repeated:
            changed |= _changed_fields(getattr(a, name), getattr(b, name), path + ".")
        elif field.is_repeated:
            if list(getattr(a, name)) != list(getattr(b, name)):
                changed.add(path)
        elif (a.HasField(name), getattr(a, name)) != (
            b.HasField(name),
            getattr(b, name),
        ):
            changed.add(path)
    return changed


def _config(ablation, variant, seed=1, extra=()):
    overrides = (
        ablation.BASE_OVERRIDES
        + ablation.data_overrides(DATA_DIR)
        + ablation.VARIANTS[variant].overrides
        + ablation.seed_overrides(seed)
        + tuple(extra)
    )
    return ablation.load_job_config(overrides, DATA_DIR)


def test_each_variant_changes_exactly_what_it_claims(ablation):
    for name, variant in ablation.VARIANTS.items():
        if variant.reference is None:
            continue
        changed = _changed_fields(
            _config(ablation, name), _config(ablation, variant.reference)
        )
        assert changed == set(variant.changes), name
        assert variant.changes, name


def test_every_group_has_a_title_and_reduction_rows_differ_as_named(ablation):
    assert set(ablation.GROUP_TITLES) == set(ablation.GROUPS)
    rows = {r.label: r for r in ablation.select_rows(["mask_id_reduction"])}
    for label, reduction in (
        ("sigmoid sum, no ReMaX", "sum"),
        ("sigmoid mean, no ReMaX", "mean"),
        ("sigmoid sum, ReMaX", "sum"),
        ("sigmoid mean, ReMaX", "mean"),
    ):
        remax = _config(ablation, rows[label].variant).model_options.remax
        assert remax.activation == "sigmoid"
        assert remax.mask_id_sigmoid_reduction == reduction, label
        assert (remax.num_relaxed_stages > 0) == label.endswith(", ReMaX"), label


def test_rows_map_to_the_settings_of_the_paper_tables(ablation):
    def remax(row):
        return _config(
            ablation, row.variant, extra=row.eval_overrides
        ).model_options.remax

    def solver(row):
        return _config(ablation, row.variant).trainer_options.solver_options

    rows = {(r.group, r.label): r for r in ablation.select_rows(list(ablation.GROUPS))}
    # Table 3: ReMask on 0/2/4/6 of the six kMaX layers.
    assert [
        remax(rows["num_remask", f"{n} ReMasks"]).num_relaxed_stages
        for n in (0, 2, 4, 6)
    ] == [0, 2, 4, 6]
    base = _config(ablation, "remax").model_options.max_deeplab
    assert list(base.transformer_decoder_num_blocks) == [2, 2, 2]
    # The regime: shapes_panoptic_v2, 64 slots, both models from one backbone.
    for variant in ("kmax", "remax"):
        config = _config(ablation, variant)
        assert config.train_dataset_options.dataset == "shapes_panoptic_v2"
        assert config.model_options.max_deeplab.num_mask_slots == 64
        assert config.model_options.initial_checkpoint == (
            "/tmp/ablation_test/pretrained/backbone_1500steps"
        )
    # Table 4: eta.
    etas = [remax(rows["eta", f"eta {e}"]).eta for e in ("0", "0.05", "0.1", "0.2")]
    assert etas == pytest.approx([0.0, 0.05, 0.1, 0.2])
    # Table 2: activation, ReMaX and clipping.
    table2 = {
        "softmax, no ReMaX, no clip": ("off", False),
        "softmax, ReMaX, no clip": ("softmax", False),
        "sigmoid, no ReMaX, no clip": ("sigmoid", False),
        "sigmoid, no ReMaX, clip": ("sigmoid", True),
        "sigmoid, ReMaX, no clip": ("sigmoid", False),
    }
    for label, (activation, clip) in table2.items():
        row = rows["activation_clipping", label]
        r = remax(row)
        assert (r.activation if r.enabled else "off") == activation, label
        assert solver(row).use_gradient_clipping == clip, label
        relaxed = r.enabled and r.num_relaxed_stages > 0 and r.eta > 0
        assert relaxed == (", ReMaX" in label), label
    # Table 5: the same trained variant, heads kept only at evaluation.
    kept = rows["head_at_test", "semantic heads + ReMask kept at test"]
    removed = rows["head_at_test", "semantic heads removed at test"]
    assert kept.variant == removed.variant == "remax"
    assert remax(kept).keep_at_inference and not remax(removed).keep_at_inference
    # Table 7.
    assert not remax(rows["stop_gradient", "no stop-gradient"]).stop_gradient
    assert remax(
        rows["stop_gradient", "ground-truth semantic masks"]
    ).use_ground_truth_semantic
    # Class thresholds: the same trained variant, only post-processing lowered.
    thresholds = [r for (g, _), r in rows.items() if g == "class_threshold"]
    assert sorted(r.variant for r in thresholds) == ["kmax", "kmax", "remax", "remax"]
    for row in thresholds:
        maskwise = _config(
            ablation, row.variant, extra=row.eval_overrides
        ).evaluator_options.maskwise_postprocessing
        expected = (0.2, 0.2) if row.eval_tag == "low_thr" else (0.4, 0.5)
        assert (
            maskwise.transformer_class_confidence_threshold_thing,
            maskwise.transformer_class_confidence_threshold_stuff,
        ) == pytest.approx(expected), row.label
        assert bool(row.eval_overrides) == (row.eval_tag == "low_thr")
    # Learning rate: 10x the base, clipping only where the label says so.
    for (group, label), row in rows.items():
        if group != "learning_rate":
            continue
        s = solver(row)
        factor = 10 if "lr 0.03" in label else 1
        assert s.base_learning_rate == pytest.approx(0.003 * factor), label
        assert s.use_gradient_clipping == label.endswith(", clip"), label
        assert remax(row).enabled == label.startswith("ReMaX"), label


def test_seeds_change_only_the_seeds_and_jobs_are_unique(ablation):
    changed = _changed_fields(
        _config(ablation, "remax", 1), _config(ablation, "remax", 2)
    )
    assert changed == {"trainer_options.seed", "train_dataset_options.seed"}
    settings = ablation.Settings(
        steps=60, seeds=3, curve_fractions=(1 / 3, 2 / 3, 1.0), steps_per_loop=10
    )
    rows = ablation.select_rows(list(ablation.GROUPS), settings.curve_fractions)
    jobs = ablation.plan_jobs(rows, settings, DATA_DIR)
    # Every variant at 60 steps, plus kMaX and ReMaX at 20 and 40: each point
    # of the curve is its own schedule; the 60-step point is the table's run.
    assert len({j["name"] for j in jobs}) == len(jobs)
    assert len(jobs) == 3 * (len(ablation.VARIANTS) + 4)
    by_name = {j["name"]: j for j in jobs}
    full = [by_name[f"remax_60steps_seed{s}"] for s in (1, 2, 3)]
    keep, low = ablation.KEEP_HEADS_AT_TEST, ablation.LOW_CLASS_THRESHOLDS
    assert all(j["extra_evals"] == [list(keep), list(low)] for j in full)
    assert by_name["kmax_60steps_seed1"]["extra_evals"] == [list(low)]
    assert by_name["remax_20steps_seed1"]["extra_evals"] == []

    def option(job, field):
        return [o for o in job["overrides"] if field in o][-1].split("=")[1]

    short = by_name["kmax_20steps_seed2"]
    assert short["curve_run"] and option(short, "training_number_of_steps") == "20"
    assert option(short, "eval_interval") == "20"  # evaluated at its end only
    assert option(short, "trainer_options.seed") == "2"
    assert option(by_name["kmax_60steps_seed1"], "eval_interval") == "60"
    assert by_name["kmax_60steps_seed1"]["curve_run"]
    assert not by_name["remax_eta_0_60steps_seed1"]["curve_run"]
    with pytest.raises(ValueError, match="unknown group"):
        ablation.select_rows(["tabel3"])


SETTINGS_SMALL = dict(steps=40, seeds=3, curve_fractions=(0.5, 1.0))


def _run(variant, seed, pq, steps=40, diverged=None, extra=None, curve=None):
    final = None if diverged else {"pq": pq, "pq_things": 0.1, "pq_stuff": 0.9}
    if final:
        final["pq_things_class_agnostic"] = 0.3
    return dict(
        variant=variant,
        steps=steps,
        seed=seed,
        final=final,
        diverged=diverged,
        extra=extra or {},
        curve=curve or {},
    )


def test_aggregate_mean_and_sample_std_over_finished_seeds(ablation):
    settings = ablation.Settings(steps_per_loop=10, **SETTINGS_SMALL)
    keep = "+".join(ablation.KEEP_HEADS_AT_TEST)

    def kept(pq):
        return {keep: {"pq": pq, "pq_things": 0.0, "pq_stuff": 1.0}}

    runs = [
        _run("remax", 1, 0.50, extra=kept(0.40)),
        _run("remax", 2, 0.52, extra=kept(0.42)),
        _run("remax", 3, 0.54, extra=kept(0.44)),
        # The shorter convergence point of the same variant: not mixed in.
        _run("remax", 1, 0.90, steps=20),
        _run("kmax_lr10", 1, None, diverged={"step": 17, "term": "total_loss"}),
        _run("kmax_lr10", 2, 0.30),
        _run("kmax_lr10", 3, 0.36),
    ]
    rows = ablation.head_at_test_rows() + [
        ablation.Row("learning_rate", "kMaX 10x", "kmax_lr10"),
        ablation.Row("convergence", "ReMaX", "remax", fraction=0.5),
    ]
    table = {e["key"]: e for e in ablation.aggregate(rows, runs, settings)}
    removed = table["remax@40"]
    assert removed["pq"] == pytest.approx(52.0)
    assert removed["pq_std"] == pytest.approx(2.0)  # sample std of 50, 52, 54
    assert removed["pq_things"] == pytest.approx(10.0)
    assert removed["pq_things_class_agnostic"] == pytest.approx(30.0)
    assert removed["seeds"] == 3
    assert table["remax+keep_heads@40"]["pq"] == pytest.approx(42.0)
    assert table["remax@20"]["pq"] == pytest.approx(90.0)
    assert math.isnan(table["remax@20"]["pq_std"])
    lr = table["kmax_lr10@40"]
    assert lr["pq"] == pytest.approx(33.0)
    assert lr["pq_std"] == pytest.approx(math.sqrt(18))
    assert lr["diverged"] == [{"seed": 1, "step": 17, "term": "total_loss"}]
    assert lr["seeds"] == 3
    text = ablation.format_tables(list(table.values()), {})
    assert "| semantic heads removed at test | 52.4 | 52.0 ± 2.0 |" in text
    assert (
        "| kMaX 10x | – | 33.0 ± 4.2 | 10.0 ± 0.0 | 90.0 ± 0.0 | 30.0 ± 0.0 |" in text
    )
    assert "seed 1 @ step 17 / 3 |" in text
    # One value: no std; none: no mean.
    assert math.isnan(mean_std([1.0])[1])
    assert all(math.isnan(v) for v in mean_std([]))


def test_curves_average_each_schedule_over_seeds(ablation):
    settings = ablation.Settings(steps_per_loop=10, **SETTINGS_SMALL)
    rows = ablation.convergence_rows(settings.curve_fractions)
    runs = [
        _run("kmax", 1, 0.1, steps=20),
        _run("kmax", 2, 0.3, steps=20),
        _run("kmax", 1, 0.2, steps=40),
        _run("kmax", 2, 0.4, steps=40),
        _run("remax", 1, 0.2, steps=20),
        _run("remax", 2, 0.4, steps=20),
        _run("remax", 1, 0.5, steps=40),
        _run("remax", 2, None, steps=40, diverged={"step": 3, "term": "x"}),
        # Another variant at the same steps: not part of the curve.
        _run("remax_eta_0", 1, 0.9, steps=40),
    ]
    c = ablation.curves(rows, runs, settings)
    assert c["kmax"]["steps"] == [20, 40] and c["kmax"]["seeds"] == [2, 2]
    assert c["kmax"]["pq"] == pytest.approx([20.0, 30.0])
    assert c["kmax"]["pq_std"] == pytest.approx([math.sqrt(200), math.sqrt(200)])
    assert c["remax"]["seeds"] == [2, 1]
    assert c["remax"]["pq"] == pytest.approx([30.0, 50.0])
    # The gap and its standard error: sqrt(200/2 + 200/2) at 20 steps.
    diff, error = ablation.gap(c["remax"], c["kmax"], "pq", 0)
    assert diff == pytest.approx(10.0) and error == pytest.approx(math.sqrt(200))
    assert math.isnan(ablation.gap(c["remax"], c["kmax"], "pq", 1)[1])
    text = ablation.format_tables([], c)
    assert "| 20 | 20.0 ± 14.1 | 30.0 ± 14.1 |" in text
    assert "+10.0 ± 14.1 (s.e.)" in text


def test_planned_jobs_keep_their_cache_keys(ablation, testdata):
    """Job names (cache files) and override lists (cache keys) stay those of
    the recorded runs, so that a --work_dir of earlier runs is reused."""
    pinned = json.loads((testdata / "ablation_jobs.json").read_text())
    data_dir = pinned["data_dir"]
    for settings, groups, key in (
        (ablation.FULL, list(ablation.GROUPS), "full"),
        (ablation.QUICK, list(ablation.QUICK_GROUPS), "quick"),
    ):
        rows = ablation.select_rows(groups, settings.curve_fractions)
        jobs = {j["name"]: j for j in ablation.plan_jobs(rows, settings, data_dir)}
        if key == "full":
            assert list(jobs) == pinned["full_names"]
        for name, job in pinned[key].items():
            assert jobs[name] == job, name
        assert os.path.basename(ablation.cache_path("/w", jobs[name])) == name + ".json"


def test_a_cached_run_serves_jobs_whose_extra_evaluations_it_holds(ablation):
    """A run evaluated once more for Table 5 serves the tables that need only
    its final metrics; a run without that evaluation does not serve Table 5;
    other overrides never match."""
    keep, low = list(ablation.KEEP_HEADS_AT_TEST), list(ablation.LOW_CLASS_THRESHOLDS)
    job = {"overrides": ["a=1"], "extra_evals": []}
    table_5 = {"overrides": ["a=1"], "extra_evals": [keep]}
    both = {"overrides": ["a=1"], "extra_evals": [keep, low]}
    assert ablation.reusable(both, job)
    assert ablation.reusable(both, table_5)
    assert ablation.reusable(table_5, table_5)
    assert not ablation.reusable(job, table_5)
    assert not ablation.reusable(table_5, both)
    assert not ablation.reusable({"overrides": ["a=2"], "extra_evals": [keep]}, job)
    assert not ablation.reusable({"overrides": ["a=1"]}, table_5)
