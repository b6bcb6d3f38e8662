"""The protos: generated modules are current, DeepLab2 fields are unchanged."""

import difflib
import importlib.util
import pathlib
import subprocess
import sys

from google.protobuf import descriptor as pb
import pytest

from remax_tf.protos import config_pb2
from remax_tf.protos import dataset_pb2
from remax_tf.protos import evaluator_pb2
from remax_tf.protos import model_pb2
from remax_tf.protos import trainer_pb2

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow  # runs protoc in a subprocess
def test_generated_modules_are_not_stale(tmp_path):
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip(
            "grpcio-tools is not installed (a build requirement and a test extra: "
            "pip install -e '.[test]')"
        )
    # protoc runs in its own process: grpc_tools' compiler extension crashes
    # when loaded beside TensorFlow, which other test modules import.
    done = subprocess.run(
        [sys.executable, str(REPO / "protos" / "generate.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    fresh = done.stdout.split()
    assert len(fresh) == 5
    for path in fresh:
        installed = REPO / "remax_tf" / "protos" / pathlib.Path(path).name
        want, have = open(path).read(), installed.read_text()
        if want != have:
            diff = "".join(
                difflib.unified_diff(have.splitlines(True), want.splitlines(True), n=1)
            )[:2000]
            pytest.fail(
                f"{installed} is stale against protos/*.proto. Fix: rerun "
                f"`pip install -e .` (or `python protos/generate.py`).\n{diff}"
            )


# (message, field, number, proto type, default) from DeepLab2's protos
# (config.proto, dataset.proto, model.proto, trainer.proto, evaluator.proto).
T = pb.FieldDescriptor
DEEPLAB2_FIELDS = [
    (config_pb2.ExperimentOptions, "experiment_name", 1, T.TYPE_STRING, ""),
    (config_pb2.ExperimentOptions, "model_options", 2, T.TYPE_MESSAGE, None),
    (config_pb2.ExperimentOptions, "trainer_options", 3, T.TYPE_MESSAGE, None),
    (config_pb2.ExperimentOptions, "train_dataset_options", 4, T.TYPE_MESSAGE, None),
    (config_pb2.ExperimentOptions, "evaluator_options", 5, T.TYPE_MESSAGE, None),
    (config_pb2.ExperimentOptions, "eval_dataset_options", 6, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "backbone", 1, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "decoder", 2, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "deeplab_v3", 3, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "deeplab_v3_plus", 4, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "panoptic_deeplab", 5, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "initial_checkpoint", 6, T.TYPE_STRING, ""),
    (model_pb2.ModelOptions, "motion_deeplab", 7, T.TYPE_MESSAGE, None),
    (
        model_pb2.ModelOptions,
        "restore_semantic_last_layer_from_initial_checkpoint",
        8,
        T.TYPE_BOOL,
        True,
    ),
    (
        model_pb2.ModelOptions,
        "restore_instance_last_layer_from_initial_checkpoint",
        9,
        T.TYPE_BOOL,
        True,
    ),
    (model_pb2.ModelOptions, "max_deeplab", 10, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions, "vip_deeplab", 11, T.TYPE_MESSAGE, None),
    (model_pb2.ModelOptions.BackboneOptions, "name", 1, T.TYPE_STRING, "resnet50"),
    (model_pb2.ModelOptions.BackboneOptions, "output_stride", 2, T.TYPE_INT32, 32),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "pretrained_weights",
        3,
        T.TYPE_STRING,
        "",
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "use_squeeze_and_excite",
        4,
        T.TYPE_BOOL,
        False,
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "drop_path_keep_prob",
        5,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "drop_path_schedule",
        6,
        T.TYPE_STRING,
        "constant",
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "stem_width_multiplier",
        7,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "backbone_width_multiplier",
        8,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "backbone_layer_multiplier",
        9,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        model_pb2.ModelOptions.BackboneOptions,
        "use_sac_beyond_stride",
        10,
        T.TYPE_INT32,
        -1,
    ),
    (model_pb2.DecoderOptions, "feature_key", 1, T.TYPE_STRING, ""),
    (model_pb2.DecoderOptions, "decoder_channels", 2, T.TYPE_INT32, 256),
    (model_pb2.DecoderOptions, "aspp_channels", 3, T.TYPE_INT32, 256),
    (model_pb2.DecoderOptions, "atrous_rates", 4, T.TYPE_INT32, None),
    (
        model_pb2.DecoderOptions,
        "decoder_conv_type",
        5,
        T.TYPE_STRING,
        "depthwise_separable_conv",
    ),
    (model_pb2.DecoderOptions, "aspp_use_only_1x1_proj_conv", 6, T.TYPE_BOOL, False),
    (model_pb2.LowLevelOptions, "feature_key", 1, T.TYPE_STRING, ""),
    (model_pb2.LowLevelOptions, "channels_project", 2, T.TYPE_INT32, 0),
    (model_pb2.HeadOptions, "output_channels", 1, T.TYPE_INT32, 0),
    (model_pb2.HeadOptions, "head_channels", 2, T.TYPE_INT32, 0),
    (
        model_pb2.HeadOptions,
        "head_conv_type",
        3,
        T.TYPE_STRING,
        "depthwise_separable_conv",
    ),
    (model_pb2.HeadOptions, "max_value_after_activation", 4, T.TYPE_FLOAT, 0.0),
    (model_pb2.HeadOptions, "min_value_after_activation", 5, T.TYPE_FLOAT, 0.0),
    (
        model_pb2.ModelOptions.MaXDeepLabOptions,
        "pixel_space_head",
        1,
        T.TYPE_MESSAGE,
        None,
    ),
    (
        model_pb2.ModelOptions.MaXDeepLabOptions,
        "auxiliary_low_level",
        2,
        T.TYPE_MESSAGE,
        None,
    ),
    (
        model_pb2.ModelOptions.MaXDeepLabOptions,
        "auxiliary_semantic_head",
        3,
        T.TYPE_MESSAGE,
        None,
    ),
    (
        model_pb2.ModelOptions.MaXDeepLabOptions,
        "instance_discrimination_sample_k",
        4,
        T.TYPE_INT32,
        0,
    ),
    (
        model_pb2.ModelOptions.MaXDeepLabOptions,
        "instance_discrimination_sample_temperature",
        5,
        T.TYPE_FLOAT,
        0.6,
    ),
    (model_pb2.ModelOptions.MaXDeepLabOptions, "semantic_sample_k", 6, T.TYPE_INT32, 0),
    (
        model_pb2.ModelOptions.MaXDeepLabOptions,
        "semantic_sample_temperature",
        7,
        T.TYPE_FLOAT,
        1.0,
    ),
    (trainer_pb2.TrainerOptions, "num_checkpoints_to_keep", 1, T.TYPE_INT32, 5),
    (trainer_pb2.TrainerOptions, "save_checkpoints_steps", 2, T.TYPE_INT32, 1000),
    (trainer_pb2.TrainerOptions, "save_summaries_steps", 3, T.TYPE_INT32, 1000),
    (trainer_pb2.TrainerOptions, "steps_per_loop", 4, T.TYPE_INT32, 1000),
    (trainer_pb2.TrainerOptions, "loss_options", 5, T.TYPE_MESSAGE, None),
    (trainer_pb2.TrainerOptions, "solver_options", 6, T.TYPE_MESSAGE, None),
    (trainer_pb2.SolverOptions, "use_sync_batchnorm", 1, T.TYPE_BOOL, True),
    (trainer_pb2.SolverOptions, "learning_policy", 2, T.TYPE_STRING, "poly"),
    (trainer_pb2.SolverOptions, "base_learning_rate", 3, T.TYPE_FLOAT, 1e-3),
    (trainer_pb2.SolverOptions, "poly_learning_power", 4, T.TYPE_FLOAT, 0.9),
    (trainer_pb2.SolverOptions, "poly_end_learning_rate", 5, T.TYPE_FLOAT, 0.0),
    (trainer_pb2.SolverOptions, "warmup_steps", 6, T.TYPE_INT32, 0),
    (trainer_pb2.SolverOptions, "optimizer", 7, T.TYPE_STRING, "adam"),
    (trainer_pb2.SolverOptions, "weight_decay", 8, T.TYPE_FLOAT, 0.0),
    (trainer_pb2.SolverOptions, "use_gradient_clipping", 9, T.TYPE_BOOL, False),
    (trainer_pb2.SolverOptions, "clip_gradient_norm", 10, T.TYPE_FLOAT, 10.0),
    (trainer_pb2.SolverOptions, "training_number_of_steps", 11, T.TYPE_INT32, 60000),
    (trainer_pb2.SolverOptions, "batchnorm_momentum", 14, T.TYPE_FLOAT, 0.99),
    (trainer_pb2.SolverOptions, "batchnorm_epsilon", 15, T.TYPE_FLOAT, 0.001),
    (
        trainer_pb2.SolverOptions,
        "backbone_learning_rate_multiplier",
        16,
        T.TYPE_FLOAT,
        1.0,
    ),
    (trainer_pb2.SolverOptions, "adamw_weight_decay", 17, T.TYPE_FLOAT, 0.0),
    (trainer_pb2.LossOptions, "semantic_loss", 1, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "center_loss", 2, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "regression_loss", 3, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "motion_loss", 4, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "next_regression_loss", 5, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "pq_style_loss", 6, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "mask_id_cross_entropy_loss", 7, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "instance_discrimination_loss", 8, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions, "depth_loss", 9, T.TYPE_MESSAGE, None),
    (trainer_pb2.LossOptions.SingleLossOptions, "name", 1, T.TYPE_STRING, ""),
    (trainer_pb2.LossOptions.SingleLossOptions, "weight", 2, T.TYPE_FLOAT, 1.0),
    (trainer_pb2.LossOptions.SingleLossOptions, "top_k_percent", 3, T.TYPE_FLOAT, 1.0),
    (dataset_pb2.DatasetOptions, "dataset", 1, T.TYPE_STRING, ""),
    (dataset_pb2.DatasetOptions, "file_pattern", 2, T.TYPE_STRING, None),
    (dataset_pb2.DatasetOptions, "batch_size", 3, T.TYPE_INT32, 32),
    (dataset_pb2.DatasetOptions, "crop_size", 4, T.TYPE_INT32, None),
    (dataset_pb2.DatasetOptions, "min_resize_value", 5, T.TYPE_INT32, None),
    (dataset_pb2.DatasetOptions, "max_resize_value", 6, T.TYPE_INT32, None),
    (dataset_pb2.DatasetOptions, "resize_factor", 7, T.TYPE_INT32, 0),
    (dataset_pb2.DatasetOptions, "augmentations", 8, T.TYPE_MESSAGE, None),
    (dataset_pb2.DatasetOptions, "sigma", 9, T.TYPE_FLOAT, 8.0),
    (
        dataset_pb2.DatasetOptions,
        "increase_small_instance_weights",
        10,
        T.TYPE_BOOL,
        False,
    ),
    (dataset_pb2.DatasetOptions, "small_instance_threshold", 11, T.TYPE_INT32, 4096),
    (dataset_pb2.DatasetOptions, "small_instance_weight", 12, T.TYPE_FLOAT, 3.0),
    (dataset_pb2.DatasetOptions, "use_two_frames", 13, T.TYPE_BOOL, False),
    (dataset_pb2.DatasetOptions, "decode_groundtruth_label", 14, T.TYPE_BOOL, True),
    (dataset_pb2.DatasetOptions, "thing_id_mask_annotations", 15, T.TYPE_BOOL, False),
    (dataset_pb2.DatasetOptions, "max_thing_id", 16, T.TYPE_INT32, 128),
    (dataset_pb2.DatasetOptions, "use_next_frame", 17, T.TYPE_BOOL, False),
    (dataset_pb2.DatasetOptions, "cameras_to_use", 18, T.TYPE_STRING, None),
    (
        dataset_pb2.DatasetOptions.AugmentationOptions,
        "min_scale_factor",
        1,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        dataset_pb2.DatasetOptions.AugmentationOptions,
        "max_scale_factor",
        2,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        dataset_pb2.DatasetOptions.AugmentationOptions,
        "scale_factor_step_size",
        3,
        T.TYPE_FLOAT,
        0.25,
    ),
    (
        dataset_pb2.DatasetOptions.AugmentationOptions,
        "autoaugment_policy_name",
        4,
        T.TYPE_STRING,
        "",
    ),
    (
        dataset_pb2.DatasetOptions.AugmentationOptions,
        "panoptic_copy_paste",
        5,
        T.TYPE_MESSAGE,
        None,
    ),
    (
        dataset_pb2.DatasetOptions.PanopticCopyPasteOptions,
        "panoptic_copy_paste_scale",
        1,
        T.TYPE_FLOAT,
        0.0,
    ),
    (
        dataset_pb2.DatasetOptions.PanopticCopyPasteOptions,
        "panoptic_copy_paste_thing_option",
        2,
        T.TYPE_STRING,
        "random",
    ),
    (
        dataset_pb2.DatasetOptions.PanopticCopyPasteOptions,
        "panoptic_copy_paste_stuff_option",
        3,
        T.TYPE_STRING,
        "random",
    ),
    (
        dataset_pb2.DatasetOptions.PanopticCopyPasteOptions,
        "panoptic_copy_paste_void_option",
        4,
        T.TYPE_STRING,
        "none",
    ),
    (evaluator_pb2.EvaluatorOptions, "eval_steps", 1, T.TYPE_INT32, -1),
    (evaluator_pb2.EvaluatorOptions, "eval_interval", 2, T.TYPE_INT32, 5000),
    (evaluator_pb2.EvaluatorOptions, "continuous_eval_timeout", 3, T.TYPE_INT32, -1),
    (evaluator_pb2.EvaluatorOptions, "use_tf_function", 4, T.TYPE_BOOL, True),
    (evaluator_pb2.EvaluatorOptions, "add_flipped_images", 5, T.TYPE_BOOL, False),
    (evaluator_pb2.EvaluatorOptions, "stuff_area_limit", 6, T.TYPE_INT32, 0),
    (evaluator_pb2.EvaluatorOptions, "center_score_threshold", 7, T.TYPE_FLOAT, 0.1),
    (evaluator_pb2.EvaluatorOptions, "nms_kernel", 8, T.TYPE_INT32, 3),
    (evaluator_pb2.EvaluatorOptions, "keep_k_centers", 9, T.TYPE_INT32, 400),
    (evaluator_pb2.EvaluatorOptions, "save_predictions", 10, T.TYPE_BOOL, False),
    (evaluator_pb2.EvaluatorOptions, "override_save_dir", 11, T.TYPE_STRING, ""),
    (evaluator_pb2.EvaluatorOptions, "num_vis_samples", 12, T.TYPE_INT32, 10),
    (evaluator_pb2.EvaluatorOptions, "save_raw_predictions", 13, T.TYPE_BOOL, False),
    (evaluator_pb2.EvaluatorOptions, "convert_raw_to_eval_ids", 14, T.TYPE_BOOL, True),
    (evaluator_pb2.EvaluatorOptions, "eval_scales", 15, T.TYPE_FLOAT, None),
    (
        evaluator_pb2.EvaluatorOptions,
        "merge_semantic_and_instance_with_tf_op",
        16,
        T.TYPE_BOOL,
        True,
    ),
    (
        evaluator_pb2.EvaluatorOptions,
        "raw_panoptic_format",
        17,
        T.TYPE_STRING,
        "two_channel_png",
    ),
    (evaluator_pb2.EvaluatorOptions, "detailed_ap_metrics", 18, T.TYPE_BOOL, False),
    (evaluator_pb2.EvaluatorOptions, "thing_area_limit", 19, T.TYPE_INT32, 0),
    (
        evaluator_pb2.EvaluatorOptions,
        "transformer_class_confidence_threshold",
        20,
        T.TYPE_FLOAT,
        0.7,
    ),
    (
        evaluator_pb2.EvaluatorOptions,
        "pixel_confidence_threshold",
        21,
        T.TYPE_FLOAT,
        0.4,
    ),
    (
        evaluator_pb2.EvaluatorOptions,
        "transformer_post_processing",
        22,
        T.TYPE_STRING,
        "pixelwise",
    ),
    (
        evaluator_pb2.EvaluatorOptions,
        "maskwise_postprocessing",
        23,
        T.TYPE_MESSAGE,
        None,
    ),
    (
        evaluator_pb2.EvaluatorOptions.MaskwisePostProcessingOptions,
        "transformer_class_confidence_threshold_thing",
        1,
        T.TYPE_FLOAT,
        0.7,
    ),
    (
        evaluator_pb2.EvaluatorOptions.MaskwisePostProcessingOptions,
        "transformer_class_confidence_threshold_stuff",
        2,
        T.TYPE_FLOAT,
        0.7,
    ),
    (
        evaluator_pb2.EvaluatorOptions.MaskwisePostProcessingOptions,
        "overlapping_threshold",
        3,
        T.TYPE_FLOAT,
        0.5,
    ),
    (
        evaluator_pb2.EvaluatorOptions.MaskwisePostProcessingOptions,
        "reorder_class_weight",
        4,
        T.TYPE_FLOAT,
        1.0,
    ),
    (
        evaluator_pb2.EvaluatorOptions.MaskwisePostProcessingOptions,
        "reorder_mask_weight",
        5,
        T.TYPE_FLOAT,
        0.0,
    ),
]


@pytest.mark.parametrize(
    "message,name,number,kind,default",
    DEEPLAB2_FIELDS,
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_deeplab2_field_is_unchanged(message, name, number, kind, default):
    field = message.DESCRIPTOR.fields_by_name.get(name)
    assert field is not None, (
        f"{message.DESCRIPTOR.full_name} lacks DeepLab2 field {name}"
    )
    assert field.number == number
    assert field.type == kind
    if default is not None:
        assert (
            field.default_value == pytest.approx(default)
            if isinstance(default, float)
            else field.default_value == default
        )


def test_eval_scales_is_packed_like_deeplab2():
    field = evaluator_pb2.EvaluatorOptions.DESCRIPTOR.fields_by_name["eval_scales"]
    assert field.is_packed


def test_remax_additions_are_numbered_from_100():
    for message in (
        model_pb2.ModelOptions,
        model_pb2.ModelOptions.MaXDeepLabOptions,
        trainer_pb2.SolverOptions,
        trainer_pb2.TrainerOptions,
        dataset_pb2.DatasetOptions,
        evaluator_pb2.EvaluatorOptions,
    ):
        known = {f[1] for f in DEEPLAB2_FIELDS if f[0] is message}
        for field in message.DESCRIPTOR.fields:
            if field.name not in known:
                assert field.number >= 100, f"{message.DESCRIPTOR.name}.{field.name}"


def test_remax_options_defaults_follow_the_paper():
    r = model_pb2.ReMaXOptions()
    assert r.enabled is True
    assert r.num_relaxed_stages == 4  # Table 3.
    assert r.semantic_loss_weight == pytest.approx(0.5)  # Sec. 4.2.
    assert r.eta == pytest.approx(0.1)  # Table 4.
    assert r.activation == "sigmoid"  # Table 2.
    assert r.stop_gradient is True  # Sec. 3.1.
