"""False-positive / false-negative mask-ID loss ratio (ReMaX Fig. 1 and 6).

    export REMAX_DATA_DIR=/tmp/remax_data   # holds shapes_panoptic/
    python benchmarks/fp_fn_ratio.py \\
        --config_file configs/demo/shapes_remax.textproto \\
        --output_dir benchmarks/results/fp_fn_ratio

The paper (Fig. 1, Appendix A / Fig. 6) plots histograms of the ratio of the
false-positive to the false-negative part of the mask-ID cross-entropy, on a
log scale: with a sigmoid activation the FP part is "always over 100x" the FN
part, and ReMask "can effectively reduce extremely high false positive
losses". This script measures the same ratio on ``shapes_panoptic``.

What is measured, per image and per relaxed decoder layer:

* Ground truth and matching from the config's ``KMaXLoss`` itself
  (``KMaXLoss.match``: the ground truth at the mask-logit resolution, one
  Hungarian matching on the final output, shared by every layer): the
  target of (pixel, slot) is 1 where the slot is matched to the pixel's
  ground-truth mask, else 0 (``Matching.slot_pixel_targets``).
* Pixels counted: those the mask-ID loss counts (``mask_id_cross_entropy``):
  non-void pixels of a matched ground-truth mask. Void and crowd pixels and
  pixels of unmatched masks are left out. No top-k (the demo's
  ``top_k_percent`` is 1.0) and no loss weight (it cancels in the ratio).
* FP = sum over counted pixels of the cross-entropy of the target-0 slot
  entries, FN = of the target-1 entries (``mask_id_fp_fn_parts``): for
  ``sigmoid`` the two parts of the binary cross-entropy summed over slots
  (FP + FN is the ReMaX mask-ID loss); for ``softmax`` FN is kMaX's loss
  -log p_target and FP = -sum log(1 - p_q) over the other slots, the penalty
  the softmax puts on them implicitly. Ratio = FP / FN per (image, layer);
  the per-pixel mean of the loss cancels in the ratio.
* Four variants from the same forward pass: activation ``sigmoid`` or
  ``softmax`` x ReMask ``off`` (the layer's raw m_pan) or ``on`` (Eq. 1-2:
  ``ReMask`` with that activation, on the model's own ReMaX semantic logits
  m_sem and class logits p of the layer, as the loss relaxes them).
  Statistics pool the ratios of all relaxed layers (the final output is never
  relaxed); the JSON also has them per layer, and for the final output
  without ReMask.
* The model runs with ``training=True`` (the auxiliary outputs and m_sem only
  exist then; batch-norm uses batch statistics, as in the training loss), in
  batches of ``--batch_size`` (the config's training batch), on the first
  ``--num_images`` training images with the evaluation preprocessing (no
  augmentation, so both checkpoints see the same pixels).
* Two checkpoints: initialisation and after ``--steps`` training steps. The
  script trains one model of the config with the project trainer
  (``run_experiment('train')``, seed ``--seed``), which writes ``ckpt-0``
  (the initial weights) and ``ckpt-<steps>``; ``--checkpoint`` skips the
  training and uses that checkpoint, with freshly initialised weights (same
  seed) as the initial panel. ``--steps 0`` measures the initial weights only.
  All four variants read the one trained model (a ReMaX model trained with
  its configured activation, sigmoid for the demo); the paper's models were
  trained per setting.

Outputs in ``--output_dir``: ``fp_fn_ratio.png`` (one panel per checkpoint,
four histograms each over log10-spaced bins, log x axis, the paper's 100x
marked) and ``fp_fn_ratio.json`` (per checkpoint and variant: number of
ratios, median, quartiles, geometric mean, min, max, share of ratios > 100
and < 1, and the median / 95th percentile / maximum of the per-pixel mean FP
and FN losses). Prints a table, then one JSON line. Takes about 5 minutes
with the defaults on a shared 2-core CPU (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from remax_tf.benchmarking.harness import data_config  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "demo" / "shapes_remax.textproto"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "benchmarks" / "results" / "fp_fn_ratio"
ACTIVATIONS = ("sigmoid", "softmax")
REMASK_MODES = ("off", "on")
# Variant names "<activation>_remask_<off|on>", in plot and table order.
VARIANTS = tuple(f"{a}_remask_{r}" for a in ACTIVATIONS for r in REMASK_MODES)
# Paper Fig. 1 caption: with sigmoid the FP loss is "always over 100x" the FN.
PAPER_RATIO_THRESHOLD = 100.0
# Default training steps: keeps the whole script within about 10 minutes on a
# shared 2-core CPU (measured, docs/benchmarks.md).
DEFAULT_STEPS = 500
DEFAULT_NUM_IMAGES = 128
# Histogram bins per decade of the ratio.
BINS_PER_DECADE = 16
FINAL_LAYER = "final"


# ----------------------------------------------------------------------------
# The per-image FP / FN aggregation (tested in
# tests/losses/test_fp_fn_ratio_script.py).
def counted_pixels(pixel_non_void, slot_pixel_targets):
    """[B, P] 1.0 on the pixels the mask-ID loss counts.

    As ``mask_id_cross_entropy``: non-void pixels with a target slot (pixels
    of unmatched ground-truth masks and crowd pixels have none).
    """
    import tensorflow as tf

    return pixel_non_void * tf.reduce_sum(slot_pixel_targets, axis=-1)


def per_image_fp_fn(
    mask_logits, slot_pixel_targets, pixel_weights, activation: str
) -> Tuple[object, object]:
    """Summed FP and FN mask-ID cross-entropy per image, [B] each.

    Args:
      mask_logits: [B, P, NQ] (raw or ReMask-relaxed).
      slot_pixel_targets: [B, P, NQ] 0/1 from the matching.
      pixel_weights: [B, P] pixels to count (``counted_pixels``).
      activation: "sigmoid" or "softmax".
    """
    import tensorflow as tf

    from remax_tf.losses import mask_id_fp_fn_parts

    fp, fn = mask_id_fp_fn_parts(mask_logits, slot_pixel_targets, activation)
    return (
        tf.reduce_sum(fp * pixel_weights, axis=1),
        tf.reduce_sum(fn * pixel_weights, axis=1),
    )


def kept_images(fp: np.ndarray, fn: np.ndarray, num_counted: np.ndarray):
    """[B] bool: images with counted pixels and non-zero FP and FN."""
    fp = np.asarray(fp, np.float64)
    fn = np.asarray(fn, np.float64)
    return (np.asarray(num_counted) > 0) & (fn > 0) & (fp > 0)


def log10_ratios(fp: np.ndarray, fn: np.ndarray, num_counted: np.ndarray):
    """log10(FP / FN) of the images with counted pixels and FN > 0."""
    keep = kept_images(fp, fn, num_counted)
    fp = np.asarray(fp, np.float64)[keep]
    fn = np.asarray(fn, np.float64)[keep]
    return np.log10(fp) - np.log10(fn)


def loss_statistics(values: Sequence[float]) -> Dict[str, float]:
    """Median, 95th percentile and maximum of per-pixel mean losses."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return {}
    median, p95 = np.percentile(values, [50, 95])
    return {"median": float(median), "p95": float(p95), "max": float(values.max())}


def ratio_statistics(log_ratios: Sequence[float]) -> Dict[str, float]:
    """Median, quartiles, geometric mean and tail shares of FP/FN ratios."""
    values = np.asarray(log_ratios, np.float64)
    if values.size == 0:
        return {"count": 0}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {
        "count": int(values.size),
        "median": float(10.0**median),
        "q1": float(10.0**q1),
        "q3": float(10.0**q3),
        "geometric_mean": float(10.0 ** values.mean()),
        "min": float(10.0 ** values.min()),
        "max": float(10.0 ** values.max()),
        "share_over_100": float(np.mean(values > math.log10(PAPER_RATIO_THRESHOLD))),
        "share_under_1": float(np.mean(values < 0.0)),
    }


# ----------------------------------------------------------------------------
# The measurement.
def _layer_names(num_relaxed: int) -> List[str]:
    return [f"aux_{i}" for i in range(num_relaxed)]


def build_measure_fn(model, loss):
    """tf.function(images, y_true) -> {(layer, variant): (fp [B], fn [B])}
    plus ("counted", ""): [B] counted pixels per image.

    ``loss`` is the config's ``KMaXLoss``: its ``match`` gives the outputs,
    the ground truth and the one matching of the final output that every
    layer's loss terms share.
    """
    import tensorflow as tf

    from remax_tf import common
    from remax_tf.losses.kmax_loss import flatten_pixels
    from remax_tf.model.remask import ReMask

    num_relaxed = loss.settings.num_relaxed_stages
    remask = {a: ReMask(activation=a, stop_gradient=True) for a in ACTIVATIONS}

    @tf.function
    def measure(images, y_true):
        predictions = model(images, training=True)
        outputs, gt, matching = loss.match(y_true, predictions)
        logits = flatten_pixels(outputs[0][common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY])
        targets = matching.slot_pixel_targets
        weights = counted_pixels(gt.pixel_non_void, targets)
        result = {("counted", ""): tf.reduce_sum(weights, axis=1)}
        for activation in ACTIVATIONS:
            result[(FINAL_LAYER, f"{activation}_remask_off")] = per_image_fp_fn(
                logits, targets, weights, activation
            )
        auxiliary = predictions[common.PRED_AUXILIARY_OUTPUTS]
        for index, name in enumerate(_layer_names(num_relaxed)):
            output = outputs[index + 1]
            m_pan = flatten_pixels(output[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY])
            m_sem = flatten_pixels(
                tf.cast(
                    auxiliary[index][common.PRED_REMAX_SEMANTIC_LOGITS_KEY], tf.float32
                )
            )
            class_logits = output[common.PRED_TRANSFORMER_CLASS_LOGITS_KEY]
            for activation in ACTIVATIONS:
                # Eq. (1)-(2) of ReMaX with either activation, as the model's
                # ReMask layer applies them with the configured one.
                relaxed = remask[activation](
                    [m_pan, m_sem, class_logits], training=True
                )
                for mode, mask_logits in (("off", m_pan), ("on", relaxed)):
                    result[(name, f"{activation}_remask_{mode}")] = per_image_fp_fn(
                        mask_logits, targets, weights, activation
                    )
        return result

    return measure


def measure_checkpoint(measure, batches) -> Tuple[Dict[str, Dict[str, dict]], int]:
    """Runs ``measure`` on every batch.

    Returns {layer: {variant: {"log_ratio", "fp", "fn": lists}}} over the kept
    images (``fp`` and ``fn`` per counted pixel) and the number of images
    without counted pixels.
    """
    records: Dict[str, Dict[str, dict]] = {}
    skipped = 0
    for images, y_true in batches:
        result = measure(images, y_true)
        counted = result.pop(("counted", "")).numpy()
        skipped += int(np.sum(counted <= 0))
        for (layer, variant), (fp, fn) in result.items():
            fp, fn = fp.numpy(), fn.numpy()
            keep = kept_images(fp, fn, counted)
            record = records.setdefault(layer, {}).setdefault(
                variant, {"log_ratio": [], "fp": [], "fn": []}
            )
            record["log_ratio"].extend(log10_ratios(fp, fn, counted).tolist())
            record["fp"].extend((fp[keep] / counted[keep]).tolist())
            record["fn"].extend((fn[keep] / counted[keep]).tolist())
    return records, skipped


def _statistics(records: Sequence[dict]) -> Dict[str, object]:
    def pool(key):
        return [v for record in records for v in record[key]]

    stats = ratio_statistics(pool("log_ratio"))
    stats["fp_per_pixel"] = loss_statistics(pool("fp"))
    stats["fn_per_pixel"] = loss_statistics(pool("fn"))
    return stats


def summarise(records, relaxed_layers: Sequence[str]) -> Dict[str, object]:
    """Pooled (relaxed layers) and per-layer statistics of one checkpoint."""
    pooled = {
        v: _statistics([records[layer][v] for layer in relaxed_layers])
        for v in VARIANTS
    }
    per_layer = {
        layer: {v: _statistics([records[layer][v]]) for v in VARIANTS}
        for layer in relaxed_layers
    }
    final = {
        v: _statistics([records[FINAL_LAYER][v]])
        for v in VARIANTS
        if v in records[FINAL_LAYER]
    }
    return {"relaxed_layers_pooled": pooled, "per_layer": per_layer, "final": final}


# ----------------------------------------------------------------------------
# Setup: config, data, training, checkpoints.
def _check_data(config) -> None:
    from remax_tf.data.input_pipeline import list_files

    patterns = list(config.train_dataset_options.file_pattern)
    if not list_files(patterns):
        raise SystemExit(
            f"no training files match {patterns}. Fix: generate the data with "
            "`python -m remax_tf.data.shapes --output_dir "
            "$REMAX_DATA_DIR/shapes_panoptic` and pass --data_dir (or set "
            "REMAX_DATA_DIR) to the directory holding shapes_panoptic/."
        )


def train(config, steps: int, model_dir: str) -> Tuple[str, str, float]:
    """Trains ``steps`` steps; returns (ckpt-0, ckpt-<steps>, seconds)."""
    import tensorflow as tf

    from remax_tf.training import run_experiment

    start = time.time()
    result = run_experiment("train", config, model_dir)
    seconds = time.time() - start
    workdir = result["model_dir"]
    initial = os.path.join(workdir, "ckpt-0")
    trained = tf.train.latest_checkpoint(workdir)
    if not tf.io.gfile.exists(initial + ".index") or trained is None:
        raise RuntimeError(f"training in {workdir} wrote no ckpt-0 / final checkpoint")
    return initial, trained, seconds


def _training_overrides(steps: int, seed: int) -> List[str]:
    loop = max(1, min(100, steps))
    return [
        f"trainer_options.solver_options.training_number_of_steps={steps}",
        f"trainer_options.save_checkpoints_steps={max(1, steps)}",
        f"trainer_options.steps_per_loop={loop}",
        f"trainer_options.save_summaries_steps={loop}",
        f"trainer_options.seed={seed}",
        "trainer_options.num_checkpoints_to_keep=2",
    ]


def measurement_batches(config, num_images: int, batch_size: int):
    """The first ``num_images`` training images (rounded up to full batches),
    evaluation preprocessing, as (images, y_true) pairs."""
    from remax_tf import common
    from remax_tf.data import build_dataset

    options = type(config.train_dataset_options)()
    options.CopyFrom(config.train_dataset_options)
    options.batch_size = batch_size
    num_batches = -(-num_images // batch_size)
    keys = (
        common.GT_SEMANTIC_KEY,
        common.GT_THING_ID_MASK_KEY,
        common.GT_THING_ID_CLASS_KEY,
        common.SEMANTIC_LOSS_WEIGHT_KEY,
    )
    batches = []
    for sample in build_dataset(options, is_training=False).take(num_batches):
        if sample[common.IMAGE].shape[0] != batch_size:
            break
        batches.append(
            (sample[common.IMAGE], {k: sample[k] for k in keys if k in sample})
        )
    if not batches:
        raise SystemExit(
            f"fewer than --batch_size={batch_size} training images; lower it."
        )
    return batches


# ----------------------------------------------------------------------------
# Reporting.
def _fmt_ratio(value: float) -> str:
    return f"{value:.3g}"


def format_table(results: Mapping[str, Mapping[str, object]]) -> str:
    lines = [
        "FP/FN mask-ID cross-entropy ratio per (image, relaxed layer); "
        "FP/px, FN/px: median per-pixel mean losses",
        f"{'checkpoint':<12}{'variant':<22}{'n':>5}{'median':>10}{'q1':>10}"
        f"{'q3':>10}{'>100':>7}{'<1':>7}{'FP/px':>9}{'FN/px':>9}",
    ]
    for stage, summary in results.items():
        for variant, stats in summary["relaxed_layers_pooled"].items():
            if not stats.get("count"):
                lines.append(f"{stage:<12}{variant:<22}{0:>5}")
                continue
            lines.append(
                f"{stage:<12}{variant:<22}{stats['count']:>5}"
                f"{_fmt_ratio(stats['median']):>10}{_fmt_ratio(stats['q1']):>10}"
                f"{_fmt_ratio(stats['q3']):>10}{stats['share_over_100']:>7.2f}"
                f"{stats['share_under_1']:>7.2f}"
                f"{_fmt_ratio(stats['fp_per_pixel']['median']):>9}"
                f"{_fmt_ratio(stats['fn_per_pixel']['median']):>9}"
            )
    return "\n".join(lines)


def plot(
    log_ratios: Mapping[str, Mapping[str, Sequence[float]]],
    titles: Mapping[str, str],
    path: str,
) -> None:
    """One panel per checkpoint, one step histogram per variant, log x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [v for stage in log_ratios.values() for r in stage.values() for v in r]
    low = math.floor(min(values + [0.0]) * 2) / 2
    high = math.ceil(max(values + [math.log10(PAPER_RATIO_THRESHOLD)]) * 2) / 2
    bins = np.logspace(low, high, int(round((high - low) * BINS_PER_DECADE)) + 1)
    colours = {"sigmoid": "tab:red", "softmax": "tab:blue"}
    styles = {"off": "-", "on": "--"}
    figure, axes = plt.subplots(
        1, len(log_ratios), figsize=(6.5 * len(log_ratios), 4.2), squeeze=False
    )
    for axis, (stage, ratios) in zip(axes[0], log_ratios.items()):
        for activation in ACTIVATIONS:
            for mode in REMASK_MODES:
                variant = f"{activation}_remask_{mode}"
                data = 10.0 ** np.asarray(ratios.get(variant, []), np.float64)
                if data.size == 0:
                    continue
                median = float(np.median(data))
                # ReMask off: filled; on: dashed outline (drawn on top).
                axis.hist(
                    data,
                    bins=bins,
                    histtype="stepfilled" if mode == "off" else "step",
                    alpha=0.3 if mode == "off" else 1.0,
                    linewidth=1.8,
                    color=colours[activation],
                    linestyle=styles[mode],
                    label=f"{activation}, ReMask {mode} (median {median:.3g})",
                )
        axis.axvline(PAPER_RATIO_THRESHOLD, color="grey", linewidth=1, linestyle=":")
        axis.set_xscale("log")
        axis.set_xlabel("FP / FN cross-entropy loss (per image and relaxed layer)")
        axis.set_ylabel("count")
        axis.set_title(titles[stage])
        axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----------------------------------------------------------------------------
def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config_file", default=str(DEFAULT_CONFIG))
    parser.add_argument("--config_override", action="append", default=[])
    parser.add_argument(
        "--data_dir",
        default=os.environ.get("REMAX_DATA_DIR", ""),
        help="Directory holding shapes_panoptic/ (default: $REMAX_DATA_DIR).",
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument(
        "--checkpoint",
        help="Trained checkpoint (prefix or directory); skips the training.",
    )
    parser.add_argument(
        "--model_dir", help="Where to train (default: a temporary directory)."
    )
    parser.add_argument("--num_images", type=int, default=DEFAULT_NUM_IMAGES)
    parser.add_argument(
        "--batch_size", type=int, default=0, help="Default: the training batch."
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output_dir", default=str(DEFAULT_OUTPUT_DIR))
    args = parser.parse_args(argv)
    if args.steps < 0 or args.num_images <= 0 or args.seed <= 0:
        parser.error("--steps must be >= 0, --num_images and --seed > 0.")
    return args


def _load_remax_config(args, trains: bool):
    """The config (with the training overrides when the script trains), its
    dataset and its loss; exits unless its data exist and ReMask is on."""
    from remax_tf.data import datasets
    from remax_tf.losses import build_loss

    overrides = list(args.config_override)
    if trains:
        overrides = _training_overrides(args.steps, args.seed) + overrides
    config = data_config(args.config_file, overrides, args.data_dir)
    _check_data(config)
    descriptor = datasets.get_dataset_descriptor(config.train_dataset_options.dataset)
    loss = build_loss(config, descriptor)
    settings = loss.settings
    if settings.num_relaxed_stages == 0 or settings.remax.use_ground_truth_semantic:
        raise SystemExit(
            f"{args.config_file}: ReMask is off (no model_options.remax block, "
            "enabled: false, or use_ground_truth_semantic), so the model has no "
            "ReMaX semantic heads to relax with. Fix: use a ReMaX config such as "
            "configs/demo/shapes_remax.textproto."
        )
    return config, descriptor, loss


def _checkpoints(
    args, config, trains: bool
) -> Tuple[Dict[str, Optional[str]], float, Optional[str]]:
    """{stage: checkpoint or None (fresh weights)}, the training seconds and
    the temporary model directory to remove (None: none)."""
    checkpoints: Dict[str, Optional[str]] = {}
    train_seconds = 0.0
    temporary = None
    if not trains:
        checkpoints["init"] = None  # fresh weights, seeded below
        if args.checkpoint:
            checkpoints["trained"] = args.checkpoint
    else:
        model_dir = args.model_dir or (temporary := tempfile.mkdtemp(prefix="fpfn_"))
        initial, trained, train_seconds = train(config, args.steps, model_dir)
        checkpoints["init"] = initial
        checkpoints["trained"] = trained
    return checkpoints, train_seconds, temporary


def _measure_stages(args, config, checkpoints, model, measure, batches, relaxed_layers):
    """Restores each checkpoint and measures; returns (results, log ratios,
    plot titles, measuring seconds) per stage."""
    from remax_tf.model.checkpoint_restore import restore_items

    results: Dict[str, object] = {}
    log_ratios: Dict[str, Dict[str, List[float]]] = {}
    titles: Dict[str, str] = {}
    sources: Dict[str, str] = {}
    measure_seconds = 0.0
    for stage, path in checkpoints.items():
        if path is not None:
            report = restore_items(model.checkpoint_items, path, what="checkpoint")
            if report.missing:
                raise SystemExit(f"{path} lacks model variables: {report.summary()}")
            sources[stage] = report.checkpoint
        else:
            sources[stage] = f"initial weights (seed {args.seed})"
        begin = time.time()
        ratios, skipped = measure_checkpoint(measure, batches)
        measure_seconds += time.time() - begin
        summary = summarise(ratios, relaxed_layers)
        summary["images_without_counted_pixels"] = skipped
        summary["source"] = sources[stage]
        results[stage] = summary
        log_ratios[stage] = {
            v: [x for layer in relaxed_layers for x in ratios[layer][v]["log_ratio"]]
            for v in VARIANTS
        }
        if stage == "init":
            when = "initialisation"
        elif args.checkpoint:
            when = f"checkpoint {os.path.basename(sources[stage])}"
        else:
            when = f"after {args.steps} training steps"
        titles[stage] = f"{config.experiment_name or 'model'}: {when}"
    return results, log_ratios, titles, measure_seconds


def _compact(output: Mapping[str, object]) -> Dict[str, object]:
    """The JSON line: wall time, steps, images, and per stage and variant the
    median ratio and the share over 100."""
    results = output["results"]
    return {
        "wall_seconds": output["wall_seconds"],
        "steps": output["steps"],
        "num_images": output["num_images"],
        "median_ratio": _pooled(results, "median", 4),
        "share_over_100": _pooled(results, "share_over_100", 3),
    }


def _pooled(results: dict, key: str, digits: int) -> dict:
    """stage -> variant -> the relaxed layers' pooled ``key``, rounded."""
    return {
        stage: {
            variant: round(stats[key], digits)
            for variant, stats in summary["relaxed_layers_pooled"].items()
            if stats.get("count")
        }
        for stage, summary in results.items()
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    start = time.time()

    import tensorflow as tf
    import tf_keras

    from remax_tf.config.resolved import resolve_kmax_settings
    from remax_tf.training.train_lib import build_keras_model

    trains = args.steps > 0 and not args.checkpoint
    config, descriptor, loss = _load_remax_config(args, trains)
    settings = loss.settings
    batch_size = args.batch_size or config.train_dataset_options.batch_size
    checkpoints, train_seconds, temporary = _checkpoints(args, config, trains)

    tf_keras.utils.set_random_seed(args.seed)
    crop = list(config.train_dataset_options.crop_size)
    model = build_keras_model(config, descriptor, crop, training=True)
    measure = build_measure_fn(model, loss)
    batches = measurement_batches(config, args.num_images, batch_size)
    relaxed_layers = _layer_names(settings.num_relaxed_stages)
    results, log_ratios, titles, measure_seconds = _measure_stages(
        args, config, checkpoints, model, measure, batches, relaxed_layers
    )
    if temporary:
        shutil.rmtree(temporary, ignore_errors=True)

    os.makedirs(args.output_dir, exist_ok=True)
    png = os.path.join(args.output_dir, "fp_fn_ratio.png")
    plot(log_ratios, titles, png)
    wall = time.time() - start
    output = {
        "config": os.path.relpath(args.config_file, REPO_ROOT)
        if os.path.isabs(args.config_file)
        else args.config_file,
        "config_overrides": args.config_override,
        "steps": args.steps if trains else (None if args.checkpoint else 0),
        "checkpoint": args.checkpoint,
        "seed": args.seed,
        "num_images": len(batches) * batch_size,
        "batch_size": batch_size,
        "num_mask_slots": resolve_kmax_settings(
            config.model_options, descriptor
        ).num_mask_slots,
        "relaxed_layers": relaxed_layers,
        "remax_activation_trained": settings.remax.activation,
        "paper_ratio_threshold": PAPER_RATIO_THRESHOLD,
        "train_seconds": round(train_seconds, 1),
        "measure_seconds": round(measure_seconds, 1),
        "wall_seconds": round(wall, 1),
        "tensorflow": tf.__version__,
        "results": results,
    }
    json_path = os.path.join(args.output_dir, "fp_fn_ratio.json")
    with open(json_path, "w") as f:
        json.dump(output, f, indent=1)
    print(format_table(results))
    print(f"wrote {png} and {json_path} in {wall:.0f} s")
    print(json.dumps(_compact(output)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
