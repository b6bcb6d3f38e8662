"""Semantic checks of an ``ExperimentOptions`` beyond what protobuf parses."""

from __future__ import annotations

from typing import List
from typing import Optional
from typing import Tuple

from remax_tf.config import dataset_choice
from remax_tf.config import resolved
from remax_tf.config.backbones import KMAX_BACKBONE_NAMES
from remax_tf.config.backbones import known_backbones
from remax_tf.config.errors import ConfigError
from remax_tf.data import datasets
from remax_tf.data.copy_paste import PASTE_OPTIONS
from remax_tf.protos import config_pb2
from remax_tf.protos import model_pb2

LEARNING_POLICIES = ("poly", "step", "cosine", "constant")
OPTIMIZERS = ("adam", "adamw", "sgd")
POST_PROCESSINGS = ("pixelwise", "maskwise")
# evaluator_options.post_processing_resolution: "input" is DeepLab2's exact
# rule, "model_output" the faster approximation (docs/export.md).
POST_PROCESSING_RESOLUTIONS = ("input", "model_output")


def _check_crop(problems: List[str], field: str, crop) -> None:
    crop = list(crop)
    if not crop:
        return
    if len(crop) != 2:
        problems.append(f"{field} = {crop}: give two values (height, width).")
        return
    for side in crop:
        if side < 33 or (side - 1) % 32:
            k = max(1, round((side - 1) / 32))
            problems.append(
                f"{field} = {crop}: {side} is not of the form 32k+1 (the model "
                f"downsamples to stride 32 with aligned corners). Fix: use "
                f"{32 * k + 1}."
            )
            return


def _resize_pair(values) -> Optional[Tuple[int, int]]:
    """DeepLab2's resize spec: [] or 0 -> None, [v] -> (v, v), [h, w]."""
    values = [int(v) for v in values]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        return None
    return values[0], values[1]


def _check_resize(problems: List[str], prefix: str, options) -> None:
    """Refuses what the input pipeline cannot do: DeepLab2 resizes an image so
    that no side exceeds max_resize_value, then pads it to crop_size (and, when
    training, takes a random crop_size window); a resized side larger than the
    crop cannot be padded into it. A min_resize_value above the crop alone is
    fine (max_resize_value, or the crop at evaluation, caps the size)."""
    crop = list(options.crop_size)
    for field in ("min_resize_value", "max_resize_value"):
        values = list(getattr(options, field))
        if len(values) > 2:
            problems.append(
                f"{prefix}.{field} = {values}: give one or two values (height, "
                "width), or 0 for no resizing."
            )
            return
    limit = _resize_pair(options.max_resize_value)
    if limit is None or len(crop) != 2:
        return
    if limit[0] > crop[0] or limit[1] > crop[1]:
        problems.append(
            f"{prefix}.max_resize_value = {list(options.max_resize_value)} exceeds "
            f"{prefix}.crop_size = {crop}: images resized up to {list(limit)} "
            f"cannot be padded into the {crop} crop. Fix: lower {prefix}."
            f"max_resize_value (and min_resize_value) to at most the crop, e.g. "
            f"{min(crop)} (python -m remax_tf.config.small_crop {min(crop)} prints "
            "consistent crop and resize overrides), or to 0 for no resizing; or "
            "raise crop_size."
        )


def _check_dataset(
    problems: List[str],
    prefix: str,
    options: config_pb2.DatasetOptions,
    num_replicas: int,
) -> None:
    if options.dataset:
        try:
            datasets.get_dataset_descriptor(options.dataset)
        except (KeyError, ValueError) as e:
            problems.append(
                f"{prefix}.dataset = {options.dataset!r}: "
                f"{str(e).strip(chr(34) + chr(39))}"
            )
    _check_crop(problems, f"{prefix}.crop_size", options.crop_size)
    _check_resize(problems, prefix, options)
    if options.batch_size < 1 or options.batch_size % num_replicas:
        problems.append(
            f"{prefix}.batch_size = {options.batch_size}: the global batch must "
            f"be a positive multiple of the {num_replicas} replica(s). Fix: use "
            f"{max(1, options.batch_size // num_replicas) * num_replicas}."
        )
    aug = options.augmentations
    if aug.min_scale_factor > aug.max_scale_factor:
        problems.append(
            f"{prefix}.augmentations: min_scale_factor {aug.min_scale_factor} > "
            f"max_scale_factor {aug.max_scale_factor}."
        )
    cp = aug.panoptic_copy_paste
    for name in ("thing", "stuff", "void"):
        value = getattr(cp, f"panoptic_copy_paste_{name}_option")
        _check_choice(
            problems,
            f"{prefix}.augmentations.panoptic_copy_paste.panoptic_copy_paste_"
            f"{name}_option",
            value,
            PASTE_OPTIONS,
        )


def _check_choice(problems: List[str], field: str, value: str, choices) -> None:
    if value not in choices:
        problems.append(f"{field} = {value!r}: use one of {tuple(choices)}.")


def _check_unit(problems: List[str], field: str, value: float) -> None:
    # Fields are float32: print 1.4, not 1.399999976158142.
    if not 0.0 <= value <= 1.0:
        problems.append(f"{field} = {value:.6g}: must lie in [0, 1].")


def _check_kmax(problems: List[str], config: config_pb2.ExperimentOptions) -> None:
    model = config.model_options
    name = model.backbone.name
    if name not in KMAX_BACKBONE_NAMES:
        problems.append(
            f"model_options.backbone.name = {name!r}: not a kMaX backbone. Known: "
            f"{', '.join(known_backbones())}."
        )
    m = model.max_deeplab
    if m.HasField("pixel_decoder_output_stride") and (
        m.pixel_decoder_output_stride not in (2, 4, 8, 16, 32)
    ):
        problems.append(
            "model_options.max_deeplab.pixel_decoder_output_stride = "
            f"{m.pixel_decoder_output_stride}: use 2, 4, 8, 16 or 32."
        )
        return
    try:
        name = dataset_choice.dataset_name(config, dataset_choice.TRAIN)
    except ConfigError as e:
        problems.append(str(e))
        return
    try:
        descriptor = datasets.get_dataset_descriptor(name)
    except (KeyError, ValueError):
        return  # Reported by _check_dataset.
    k = resolved.resolve_kmax_settings(model, descriptor)
    _check_kmax_stages(problems, k)
    _check_kmax_sizes(problems, k, model)
    _check_remax(problems, k.remax)


def _check_kmax_stages(problems: List[str], k: resolved.KMaXSettings) -> None:
    """Per-stage lists agree in length and name existing strides and blocks."""
    stages = len(k.pixel_decoder_strides)
    for field in (
        "pixel_decoder_widths",
        "pixel_decoder_num_blocks",
        "pixel_decoder_block_types",
    ):
        if len(getattr(k, field)) != stages:
            problems.append(
                f"model_options.max_deeplab.{field} = {list(getattr(k, field))}: "
                f"needs {stages} entries, one per stage at strides "
                f"{list(k.pixel_decoder_strides)}."
            )
    for t in k.pixel_decoder_block_types:
        if t not in resolved.BLOCK_TYPES:
            problems.append(
                f"model_options.max_deeplab.pixel_decoder_block_types: "
                f"{t!r} is not one of {resolved.BLOCK_TYPES}."
            )
    if len(k.transformer_decoder_num_blocks) != len(k.transformer_decoder_strides):
        problems.append(
            "model_options.max_deeplab.transformer_decoder_num_blocks "
            f"{list(k.transformer_decoder_num_blocks)} and "
            f"transformer_decoder_strides {list(k.transformer_decoder_strides)} "
            "must have the same length."
        )
    for s in k.transformer_decoder_strides:
        if s not in k.pixel_decoder_strides:
            problems.append(
                f"model_options.max_deeplab.transformer_decoder_strides: {s} is not "
                f"a pixel-decoder stride {list(k.pixel_decoder_strides)}."
            )


def _check_kmax_sizes(
    problems: List[str], k: resolved.KMaXSettings, model: model_pb2.ModelOptions
) -> None:
    """Slot count, attention heads and drop-path probabilities."""
    if k.num_mask_slots < 1:
        problems.append(
            f"model_options.max_deeplab.num_mask_slots = "
            f"{k.num_mask_slots}: must be positive."
        )
    if k.transformer_decoder_channels % max(1, k.transformer_decoder_num_heads):
        problems.append(
            "model_options.max_deeplab.transformer_decoder_channels "
            f"{k.transformer_decoder_channels} is not divisible by "
            f"transformer_decoder_num_heads {k.transformer_decoder_num_heads}."
        )
    _check_unit(
        problems,
        "model_options.max_deeplab.transformer_decoder_drop_path_keep_prob",
        k.transformer_decoder_drop_path_keep_prob,
    )
    _check_unit(
        problems,
        "model_options.backbone.drop_path_keep_prob",
        model.backbone.drop_path_keep_prob,
    )


def _check_remax(problems: List[str], r: resolved.ReMaXSettings) -> None:
    """ReMaX's allowed values (paper Sec. 3)."""
    if not r.enabled:
        return
    _check_choice(
        problems,
        "model_options.remax.activation",
        r.activation,
        resolved.REMAX_ACTIVATIONS,
    )
    if r.mask_id_sigmoid_reduction not in resolved.MASK_ID_SIGMOID_REDUCTIONS:
        problems.append(
            "model_options.remax.mask_id_sigmoid_reduction = "
            f"{r.mask_id_sigmoid_reduction!r}: use one of "
            f"{resolved.MASK_ID_SIGMOID_REDUCTIONS}."
        )
    if r.num_relaxed_stages < 0:
        problems.append(
            "model_options.remax.num_relaxed_stages = "
            f"{r.num_relaxed_stages}: must be >= 0."
        )
    _check_unit(problems, "model_options.remax.eta", r.eta)
    if r.semantic_loss_weight < 0:
        problems.append(
            "model_options.remax.semantic_loss_weight = "
            f"{r.semantic_loss_weight}: must be >= 0."
        )


def _check_evaluator(problems: List[str], ev) -> None:
    _check_choice(
        problems,
        "evaluator_options.transformer_post_processing",
        ev.transformer_post_processing,
        POST_PROCESSINGS,
    )
    _check_choice(
        problems,
        "evaluator_options.post_processing_resolution",
        ev.post_processing_resolution,
        POST_PROCESSING_RESOLUTIONS,
    )
    _check_unit(
        problems,
        "evaluator_options.pixel_confidence_threshold",
        ev.pixel_confidence_threshold,
    )
    _check_unit(
        problems,
        "evaluator_options.transformer_class_confidence_threshold",
        ev.transformer_class_confidence_threshold,
    )
    mw = ev.maskwise_postprocessing
    for field in (
        "transformer_class_confidence_threshold_thing",
        "transformer_class_confidence_threshold_stuff",
        "overlapping_threshold",
    ):
        _check_unit(
            problems,
            f"evaluator_options.maskwise_postprocessing.{field}",
            getattr(mw, field),
        )


def validate_config(
    config: config_pb2.ExperimentOptions, path: str = "<config>", num_replicas: int = 1
) -> None:
    """Raises ConfigError listing every problem found in ``config``."""
    problems: List[str] = []
    _check_dataset(
        problems, "train_dataset_options", config.train_dataset_options, num_replicas
    )
    if config.HasField("eval_dataset_options"):
        _check_dataset(problems, "eval_dataset_options", config.eval_dataset_options, 1)
    if config.model_options.WhichOneof("meta_architecture") == "max_deeplab":
        _check_kmax(problems, config)
    else:
        problems.append(
            "model_options: remax_tf builds kMaX-DeepLab only; set a "
            "`max_deeplab { ... }` block (found meta_architecture = "
            f"{config.model_options.WhichOneof('meta_architecture')!r})."
        )
    solver = config.trainer_options.solver_options
    _check_choice(
        problems,
        "trainer_options.solver_options.learning_policy",
        solver.learning_policy,
        LEARNING_POLICIES,
    )
    _check_choice(
        problems,
        "trainer_options.solver_options.optimizer",
        solver.optimizer,
        OPTIMIZERS,
    )
    if solver.base_learning_rate <= 0:
        problems.append(
            f"trainer_options.solver_options.base_learning_rate = "
            f"{solver.base_learning_rate}: must be positive."
        )
    for b in solver.lr_decay_boundaries:
        _check_unit(problems, "trainer_options.solver_options.lr_decay_boundaries", b)
    if list(solver.lr_decay_boundaries) != sorted(solver.lr_decay_boundaries):
        problems.append(
            "trainer_options.solver_options.lr_decay_boundaries = "
            f"{list(solver.lr_decay_boundaries)}: must be increasing."
        )
    if solver.training_number_of_steps < 1:
        problems.append(
            "trainer_options.solver_options.training_number_of_steps"
            f" = {solver.training_number_of_steps}: must be >= 1."
        )
    _check_evaluator(problems, config.evaluator_options)
    if problems:
        lines = "\n  - ".join(problems)
        raise ConfigError(f"{path}: invalid config:\n  - {lines}")
