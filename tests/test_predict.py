"""``python -m remax_tf.predict`` end to end on the real COCO sample images.

A tiny shapes_panoptic kMaX model (crop 65) is saved the way the trainer saves
it (``tf.train.CheckpointManager`` with ``global_step`` and the model's
checkpoint items under ``model_dir/<experiment_name>/``). Its weights are
altered before saving so that the post-processing (pixel-wise, thresholds 0)
yields many segments, and so that predictions made from random initial
weights (a failed restore) would differ. Expected maps are computed with the
model in memory through the evaluation pieces (eval preprocessing, model,
post-processor, undo), independently of the serving module ``predict`` uses.
"""

import contextlib
import io
import json

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf import predict
from remax_tf.config import load_config
from remax_tf.data import preprocessing
from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.data.input_pipeline import sample_spec
from remax_tf.evaluation.coco_panoptic import load_id_png
from remax_tf.inference import images as images_lib
from remax_tf.inference import model_files
from remax_tf.inference.predictor import load_predictor
from remax_tf.model import build_model
from remax_tf.postprocess import build_post_processor
from remax_tf.postprocess import panoptic_segments
from remax_tf.postprocess import undo_resize_and_pad

CONFIG = "configs/demo/shapes_kmax.textproto"
CROP = 65
OVERRIDES = [
    f"{options}.{field}=[{CROP}, {CROP}]"
    for options in ("train_dataset_options", "eval_dataset_options")
    for field in ("crop_size", "min_resize_value", "max_resize_value")
] + [
    "evaluator_options.transformer_post_processing=pixelwise",
    "evaluator_options.pixel_confidence_threshold=0.0",
    "evaluator_options.transformer_class_confidence_threshold=0.0",
    "evaluator_options.thing_area_limit=0",
    "evaluator_options.stuff_area_limit=0",
]
IMAGE_A, IMAGE_B = "000000142238", "000000439180"
UNREADABLE = ("broken", "truncated")
# EXIF tag of the orientation (TIFF/EXIF standard).
EXIF_ORIENTATION = 0x0112


def _config(repo_root):
    return load_config(
        str(repo_root / CONFIG), OVERRIDES, environ={"REMAX_DATA_DIR": "/unused"}
    )


def _override_flags():
    return [flag for o in OVERRIDES for flag in ("--config_override", o)]


def _varied_weights(model):
    """Scales the mask logits and the class head so that a random model
    predicts many segments of several classes (not one void-dominated map)."""
    items = model.checkpoint_items
    mask_norm = items[common.CKPT_PIXEL_SPACE_MASK_BATCH_NORM]
    mask_norm.gamma.assign(mask_norm.gamma * 100.0)
    head = items[common.CKPT_TRANSFORMER_CLASS_HEAD]
    kernel = next(v for v in head.variables if "kernel" in v.name)
    bias = next(v for v in head.variables if "bias" in v.name)
    kernel.assign(kernel * 20.0)
    void_last = np.zeros(bias.shape, np.float32)
    void_last[-1] = -5.0
    bias.assign(void_last)


def _expected_panoptic(model, config, descriptor, image):
    """Evaluation's path: eval preprocessing, model, post-processor, undo."""
    preprocess = sample_spec(
        descriptor, config.eval_dataset_options, is_training=False
    ).preprocess
    padded, _, resized = preprocessing.preprocess_for_eval(
        tf.constant(image), None, preprocess, label_pad_value=0
    )
    outputs = model(padded[tf.newaxis], training=False)
    post_processor = build_post_processor(
        config.evaluator_options, descriptor, preprocess.crop_size
    )
    panoptic = post_processor(outputs)[common.PRED_PANOPTIC_KEY]
    return undo_resize_and_pad(panoptic, tf.shape(resized)[:2], image.shape[:2])[
        0
    ].numpy()


def _coco_ids(panoptic, descriptor):
    """The COCO PNG ids predict must write for ``panoptic``."""
    ids = panoptic_segments(panoptic, descriptor)["segmentation"]
    return np.where(ids < 0, 0, ids)


def _write_inputs(folder, sample_dir):
    """The two sample JPEGs, converted and rotated copies, broken files.

    Returns (the files predict runs on, files only read by ``load_image``).
    """
    folder.mkdir()
    other = folder.parent / "other_inputs"
    other.mkdir()
    a = Image.open(sample_dir / f"{IMAGE_A}.jpg").convert("RGB")
    b = Image.open(sample_dir / f"{IMAGE_B}.jpg").convert("RGB")
    paths = {}
    for name in (IMAGE_A, IMAGE_B):
        paths[name] = folder / f"{name}.jpg"
        paths[name].write_bytes((sample_dir / f"{name}.jpg").read_bytes())
    paths["gray"] = folder / "gray.png"
    a.convert("L").save(paths["gray"])
    # Stored sideways with EXIF orientation 6 (display rotated 90 degrees
    # clockwise), so that a viewer, and predict, see image A upright.
    paths["rotated"] = folder / "rotated.png"
    a.transpose(Image.Transpose.ROTATE_90).save(paths["rotated"], exif=_exif(6))
    paths["broken"] = folder / "broken.jpg"
    paths["broken"].write_bytes(b"this is not a JPEG")
    paths["truncated"] = folder / "truncated.jpg"
    data = paths[IMAGE_A].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])

    extra = {}
    # 16-bit grayscale holding the 8-bit values times 257.
    wide = np.asarray(a.convert("L"), np.uint16) * np.uint16(257)
    extra["gray16"] = other / "gray16.png"
    Image.fromarray(wide).save(extra["gray16"])
    rgba = b.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(b.size))
    extra["rgba"] = other / "rgba.png"
    rgba.save(extra["rgba"])
    extra["palette"] = other / "palette.gif"
    b.convert("P", palette=Image.Palette.ADAPTIVE).save(extra["palette"])
    extra["rotated_jpeg"] = other / "rotated.jpg"
    a.transpose(Image.Transpose.ROTATE_270).save(
        extra["rotated_jpeg"], quality=95, exif=_exif(8)
    )
    return paths, extra


def _exif(orientation):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return exif


@pytest.fixture(scope="module")
def run(tmp_path_factory, testdata, repo_root):
    """Trains nothing: builds, saves, then runs the CLI once on all inputs."""
    root = tmp_path_factory.mktemp("predict")
    config = _config(repo_root)
    descriptor = get_dataset_descriptor("shapes_panoptic")
    tf.random.set_seed(0)
    model = build_model(config, descriptor)
    model(tf.zeros([1, CROP, CROP, 3]), training=False)
    _varied_weights(model)
    global_step = tf.Variable(7, dtype=tf.int64)
    checkpoint = tf.train.Checkpoint(global_step=global_step, **model.checkpoint_items)
    model_dir = root / "model_dir"
    tf.train.CheckpointManager(
        checkpoint, str(model_dir / config.experiment_name), max_to_keep=1
    ).save(checkpoint_number=7)
    paths, extra = _write_inputs(
        root / "inputs", testdata / "coco_panoptic_sample" / "input_images"
    )
    output_dir = root / "out"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = predict.main(
            [
                "--model",
                str(model_dir),
                "--config_file",
                str(repo_root / CONFIG),
                *_override_flags(),
                "--images",
                str(root / "inputs" / "*"),
                "--output_dir",
                str(output_dir),
            ]
        )
    return {
        "model": model,
        "config": config,
        "descriptor": descriptor,
        "paths": paths,
        "extra": extra,
        "out": output_dir,
        "status": status,
        "stderr": stderr.getvalue(),
        "root": root,
        "model_dir": model_dir,
    }


def _annotations(run):
    data = json.loads((run["out"] / predict.COCO_JSON).read_text())
    return data, {a["file_name"]: a for a in data["annotations"]}


def _readable(run):
    return [k for k in run["paths"] if k not in UNREADABLE]


def _ids(run, name):
    return load_id_png(str(run["out"] / f"{name}{predict.PANOPTIC_SUFFIX}"))


def test_outputs_for_every_readable_image(run):
    assert run["status"] == 0, run["stderr"]
    data, by_file = _annotations(run)
    assert sorted(by_file) == sorted(
        f"{k}{predict.PANOPTIC_SUFFIX}" for k in _readable(run)
    )
    for key in _readable(run):
        assert (run["out"] / f"{key}{predict.OVERLAY_SUFFIX}").is_file()
    # COCO image ids: the number of an all-digit name (as in COCO's ground truth).
    assert {a["image_id"] for a in data["annotations"]} == {
        142238,
        439180,
        "gray",
        "rotated",
    }
    descriptor = run["descriptor"]
    assert {c["id"] for c in data["categories"]} == {
        descriptor.original_category_ids[i] for i in descriptor.thing_stuff_class_ids
    }
    assert "4 images predicted, 2 skipped" in run["stderr"]


@pytest.mark.parametrize("name", [IMAGE_A, IMAGE_B])
def test_predictions_are_the_restored_model_under_evaluation(run, name):
    """The PNG equals the evaluation path of the saved model, pixel for pixel,
    so the checkpoint was restored and resize/pad/undo match evaluation."""
    image = np.asarray(Image.open(run["paths"][name]).convert("RGB"))
    expected = _expected_panoptic(run["model"], run["config"], run["descriptor"], image)
    ids = _ids(run, name)
    assert ids.shape == image.shape[:2]
    assert np.array_equal(ids, _coco_ids(expected, run["descriptor"]))
    assert len(np.unique(ids)) > 5  # Many segments: a meaningful comparison.


@pytest.mark.parametrize("name", [IMAGE_A, IMAGE_B, "gray", "rotated"])
def test_png_ids_match_both_json_files(run, name):
    descriptor = run["descriptor"]
    _, by_file = _annotations(run)
    png = f"{name}{predict.PANOPTIC_SUFFIX}"
    ids = _ids(run, name)
    coco = by_file[png]["segments_info"]
    present = set(np.unique(ids).tolist()) - {0}
    assert {s["id"] for s in coco} == present
    for segment in coco:
        mask = ids == segment["id"]
        assert segment["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert segment["bbox"] == [
            int(xs.min()),
            int(ys.min()),
            int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1),
        ]
    hf = json.loads((run["out"] / predict.SEGMENTS_JSON).read_text())
    entry = next(e for e in hf["images"] if e["segmentation"] == png)
    assert (entry["height"], entry["width"]) == ids.shape
    by_id = {s["id"]: s for s in coco}
    assert {s["id"] for s in entry["segments_info"]} == present
    for segment in entry["segments_info"]:
        category_id = by_id[segment["id"]]["category_id"]
        assert descriptor.original_category_ids[segment["label_id"]] == category_id
        assert segment["category_id"] == category_id
        assert segment["label"] == descriptor.class_names[segment["label_id"]]
        assert 0.0 <= segment["score"] <= 1.0
        assert set(segment) >= {"id", "label_id", "was_fused", "score"}


def test_overlays_have_the_upright_input_size(run):
    for key in _readable(run):
        overlay = Image.open(run["out"] / f"{key}{predict.OVERLAY_SUFFIX}")
        with Image.open(run["paths"][key]) as source:
            width, height = source.size
        if key == "rotated":
            width, height = height, width
        assert overlay.size == (width, height), key
        assert overlay.mode == "RGB"


def test_grayscale_and_rotated_inputs_end_to_end(run):
    # EXIF orientation applied: the sideways-stored copy predicts as image A.
    assert np.array_equal(_ids(run, "rotated"), _ids(run, IMAGE_A))
    gray = np.asarray(Image.open(run["paths"]["gray"]))
    expected = _expected_panoptic(
        run["model"],
        run["config"],
        run["descriptor"],
        np.repeat(gray[..., None], 3, axis=-1),
    )
    assert np.array_equal(_ids(run, "gray"), _coco_ids(expected, run["descriptor"]))


def test_unreadable_images_are_skipped_and_reported(run):
    for key in UNREADABLE:
        path = str(run["paths"][key])
        assert f"skipping {path}" in run["stderr"]
        assert f"skipped {path}" in run["stderr"]
        assert not (run["out"] / f"{key}{predict.PANOPTIC_SUFFIX}").exists()
    hf = json.loads((run["out"] / predict.SEGMENTS_JSON).read_text())
    assert sorted(s["image"] for s in hf["skipped"]) == sorted(
        str(run["paths"][k]) for k in UNREADABLE
    )


class _NeverCalled:
    """A predictor for runs that must fail before predicting."""

    descriptor = get_dataset_descriptor("shapes_panoptic")

    def describe(self):
        return "unused"

    def __call__(self, image):
        raise AssertionError("the predictor must not run")


def test_on_error_fail_names_the_file(run, tmp_path):
    with pytest.raises(predict.PredictError, match="truncated.jpg"):
        predict.predict_images(
            _NeverCalled(),
            [str(run["paths"]["truncated"])],
            str(tmp_path),
            on_error="fail",
            progress=False,
            stream=io.StringIO(),
        )


def test_image_conversions(run):
    a = np.asarray(Image.open(run["paths"][IMAGE_A]).convert("RGB"))
    b = np.asarray(Image.open(run["paths"][IMAGE_B]).convert("RGB"))
    load = images_lib.load_image
    assert np.array_equal(load(str(run["paths"]["rotated"])), a)
    gray = load(str(run["paths"]["gray"]))
    assert gray.shape == a.shape and np.array_equal(gray[..., 0], gray[..., 2])
    # 16-bit grayscale is scaled to 8 bits, not clipped to white.
    assert np.array_equal(load(str(run["extra"]["gray16"])), gray)
    # Alpha is dropped, colours kept.
    assert np.array_equal(load(str(run["extra"]["rgba"])), b)
    palette = load(str(run["extra"]["palette"]))
    assert palette.shape == b.shape and palette.dtype == np.uint8
    # A JPEG stored with orientation 8 (90 degrees counter-clockwise) comes
    # back upright; JPEG is lossy, so only close to A's pixels.
    rotated = load(str(run["extra"]["rotated_jpeg"])).astype(int)
    assert rotated.shape == a.shape
    assert np.abs(rotated - a).mean() < 0.1 * np.abs(rotated - a[::-1, ::-1]).mean()


def test_image_listing_and_read_errors(tmp_path, run):
    with pytest.raises(images_lib.ImageReadError, match="broken.jpg"):
        images_lib.load_image(str(run["paths"]["broken"]))
    with pytest.raises(FileNotFoundError, match="matches no image"):
        images_lib.list_images([str(tmp_path / "*.jpg")])
    inputs = run["paths"][IMAGE_A].parent
    listed = images_lib.list_images([str(inputs), str(inputs / "*.png")])
    assert listed == sorted(str(p) for p in run["paths"].values())


class _GroundTruth:
    """A perfect COCO model: returns the sample's ground truth per image size."""

    def __init__(self, sample_dir):
        from remax_tf.evaluation import coco_panoptic

        self.descriptor = get_dataset_descriptor("coco_panoptic")
        data = json.loads((sample_dir / "panoptic_examples.json").read_text())
        self.maps = {}
        for annotation in data["annotations"]:
            ids = load_id_png(
                str(sample_dir / "panoptic_examples" / annotation["file_name"])
            )
            panoptic, _, _ = coco_panoptic.coco_to_deeplab2(
                ids, annotation["segments_info"], self.descriptor
            )
            self.maps[panoptic.shape] = panoptic

    def describe(self):
        return "ground truth"

    def __call__(self, image):
        return {common.PRED_PANOPTIC_KEY: self.maps[image.shape[:2]]}


def test_outputs_score_perfectly_with_the_coco_scorer(testdata, tmp_path):
    """File names, image ids and original category ids are what the COCO
    panoptic scorer expects: the ground truth written by predict has PQ 1."""
    from remax_tf.evaluation.coco_panoptic import pq_compute

    sample_dir = testdata / "coco_panoptic_sample"
    summary = predict.predict_images(
        _GroundTruth(sample_dir),
        images_lib.list_images([str(sample_dir / "input_images")]),
        str(tmp_path),
        overlay=False,
        progress=False,
        stream=io.StringIO(),
    )
    assert len(summary.predicted) == 2
    results = pq_compute(
        str(sample_dir / "panoptic_examples.json"),
        str(tmp_path / predict.COCO_JSON),
        str(sample_dir / "panoptic_examples"),
        str(tmp_path),
        verbose=False,
    )
    assert results["All"]["pq"] == 1.0 and results["All"]["n"] == 8


def test_output_names_stay_distinct():
    names = predict.output_names(["a/x.jpg", "b/x.jpg", "b/y.png", "b/y.jpg"])
    assert names == {
        "a/x.jpg": "a__x",
        "b/x.jpg": "b__x",
        "b/y.png": "b__y_png",
        "b/y.jpg": "b__y_jpg",
    }
    assert predict.image_ids(["000000142238", "photo"]) == [142238, "photo"]
    assert predict.image_ids(["01", "1"]) == ["01", "1"]


def test_model_errors_are_clear(run, tmp_path, repo_root):
    with pytest.raises(model_files.ModelFileError, match="found no model"):
        load_predictor(str(tmp_path))
    with pytest.raises(model_files.ModelFileError, match="--config_file"):
        load_predictor(str(run["model_dir"]))
    # A checkpoint holding only the encoder: the rest would stay random.
    encoder = run["model"].checkpoint_items[common.CKPT_ENCODER]
    partial = tf.train.Checkpoint(**{common.CKPT_ENCODER: encoder})
    prefix = partial.write(str(tmp_path / "partial" / "ckpt-1"))
    with pytest.raises(model_files.ModelFileError, match="lacks .* variables"):
        load_predictor(
            prefix, config_file=str(repo_root / CONFIG), config_overrides=OVERRIDES
        )


def test_command_line_errors(tmp_path, capsys):
    status = predict.main(
        [
            "--model",
            str(tmp_path),
            "--images",
            str(tmp_path / "none*.jpg"),
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    assert status == 1
    assert "matches no image" in capsys.readouterr().err


def test_used_output_dir_is_refused_unless_overwrite(run, tmp_path, capsys):
    args = ["--model", str(run["model_dir"]), "--images", str(run["paths"]["gray"])]
    status = predict.main([*args, "--output_dir", str(run["out"])])
    assert status == 1
    assert "already holds predictions" in capsys.readouterr().err
    # --overwrite deletes the earlier outputs (ours only), then writes anew.
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / "old_panoptic.png", out / "old_overlay.png", out / predict.COCO_JSON]
    for path in stale:
        path.write_text("stale")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(predict.PredictError, match="--overwrite"):
        predict.prepare_output_dir(str(out))
    predict.prepare_output_dir(str(out), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_json_outputs_follow_the_umask(run):
    """predictions.json and segments.json get the mode of the PNGs (the
    umask's), not the 0600 of a private temporary file."""
    png = (run["out"] / f"{IMAGE_A}{predict.PANOPTIC_SUFFIX}").stat().st_mode
    for name in (predict.COCO_JSON, predict.SEGMENTS_JSON):
        assert (run["out"] / name).stat().st_mode & 0o777 == png & 0o777, name


# ---------------------------------------------------------------------------
# Exported models.


def test_descriptor_of_exported_models(run, tmp_path):
    from remax_tf.data.datasets import descriptor_to_json

    custom = dict(descriptor_to_json(run["descriptor"]), name="my_shapes")
    custom["classes"][0]["name"] = "coin"
    found = model_files.resolve_descriptor(
        None, {"dataset": "my_shapes", "descriptor": custom}, "meta.json"
    )
    assert found.name == "my_shapes" and found.class_names[1] == "coin"
    assert (
        model_files.resolve_descriptor("coco_panoptic", {"descriptor": custom}, "m")
    ).name == "coco_panoptic"
    with pytest.raises(model_files.ModelFileError, match="--dataset"):
        model_files.resolve_descriptor(None, {"dataset": "unregistered"}, "m.json")
    with pytest.raises(model_files.ModelFileError, match="--dataset"):
        model_files.resolve_descriptor(None, {}, None)


def _toy_tflite(path, function, input_spec):
    """Converts ``function`` with a serving_default signature, as the export
    does."""
    concrete = tf.function(function, input_signature=[input_spec])
    concrete = concrete.get_concrete_function()
    content = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], tf.Module()
    ).convert()
    path.write_bytes(content)
    return str(path)


def _image_spec():
    return tf.TensorSpec([1, CROP, CROP, 3], tf.uint8, "image")


def _threshold_maps(image):
    """A stand-in model: semantic class 6 where red > 127, else 5."""
    red = tf.cast(image[..., 0], tf.int32)
    semantic = 5 + tf.cast(red > 127, tf.int32)
    return {
        common.PRED_PANOPTIC_KEY: semantic * 256,
        common.PRED_SEMANTIC_KEY: semantic,
        common.PRED_SEMANTIC_SCORES_KEY: tf.cast(red, tf.float32) / 255.0,
    }


def _two_halves(height, width):
    """Dark left part, bright right part and a bright square on the left."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, width // 2 :] = 200
    image[height // 4 : height // 2, width // 8 : width // 4] = 255
    return image


def _threshold_reference(image):
    return (5 + (image[..., 0] > 127).astype(np.int32)) * 256


def test_saved_model_export_layout(tmp_path):
    """A stand-in model saved as remax_tf.export lays it out: ``saved_model/``
    with a serving_default taking one uint8 [H, W, 3] image, next to the
    export's metadata.json naming the dataset."""
    from remax_tf.export import saved_model as serving

    def serve_image(image):
        maps = _threshold_maps(image[tf.newaxis])
        return {key: value[0] for key, value in maps.items()}

    function = tf.function(
        serve_image, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)]
    ).get_concrete_function()
    tf.saved_model.save(
        tf.Module(),
        str(tmp_path / serving.SAVED_MODEL_DIR),
        signatures={serving.SERVING_DEFAULT: function},
    )
    serving.write_metadata({"dataset": "shapes_panoptic"}, str(tmp_path))
    for path in (tmp_path, tmp_path / serving.SAVED_MODEL_DIR):
        assert model_files.detect_model_kind(str(path)) == model_files.SAVED_MODEL
        predictor = load_predictor(str(path))
        assert predictor.descriptor.name == "shapes_panoptic"
        image = _two_halves(37, 51)
        maps = predictor(image)
        assert np.array_equal(
            maps[common.PRED_PANOPTIC_KEY], _threshold_reference(image)
        )
    with pytest.raises(model_files.ModelFileError, match="do not apply"):
        load_predictor(str(tmp_path), config_file="any.textproto")
    (tmp_path / serving.METADATA_FILE).unlink()
    with pytest.raises(model_files.ModelFileError, match="--dataset"):
        load_predictor(str(tmp_path))


def test_tflite_with_maps_inside(tmp_path):
    """A stand-in file in the export layout (``DIR/tflite/*.tflite`` next to
    ``DIR/metadata.json``)."""
    from remax_tf.export import saved_model as serving

    (tmp_path / "tflite").mkdir()
    path = _toy_tflite(
        tmp_path / "tflite" / "model_fp32.tflite", _threshold_maps, _image_spec()
    )
    serving.write_metadata({"dataset": "shapes_panoptic"}, str(tmp_path))
    assert model_files.METADATA_FILE == serving.METADATA_FILE
    assert model_files.detect_model_kind(path) == model_files.TFLITE
    predictor = load_predictor(path)
    assert predictor.descriptor.name == "shapes_panoptic"
    assert predictor.input_size == (CROP, CROP)
    # An image of the input size is fed as it is.
    same = _two_halves(CROP, CROP)
    maps = predictor(same)
    assert np.array_equal(maps[common.PRED_PANOPTIC_KEY], _threshold_reference(same))
    assert set(maps) == {
        common.PRED_PANOPTIC_KEY,
        common.PRED_SEMANTIC_KEY,
        common.PRED_SEMANTIC_SCORES_KEY,
    }
    # A wide image is fitted into 65 x 65 (resized to 16 x 65, then padded
    # with 128, which the stand-in calls class 6); the maps come back at the
    # image size without the padding.
    wide = _two_halves(130, 520)
    panoptic = predictor(wide)[common.PRED_PANOPTIC_KEY]
    assert panoptic.shape == wide.shape[:2]
    agreement = (panoptic == _threshold_reference(wide)).mean()
    assert agreement > 0.97, agreement
    assert (panoptic[-10:, :200] == 5 * 256).mean() > 0.97


def test_tflite_int8_pair_runs_the_post_processing_file(tmp_path):
    size = CROP // 4 + 1

    def raw_logits(image):
        red = tf.cast(image[:, ::4, ::4, :1], tf.float32)
        return {
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.concat([red, -red], -1),
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.zeros([1, 2, 8]),
        }

    def post_process(raw):
        logits = raw[common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY][..., :1]
        red = tf.image.resize(logits, [CROP, CROP], method="nearest")[..., 0]
        return _threshold_maps(tf.cast(red, tf.uint8)[..., tf.newaxis])

    model = _toy_tflite(tmp_path / "model_int8.tflite", raw_logits, _image_spec())
    with pytest.raises(model_files.ModelFileError, match="postprocess.tflite"):
        load_predictor(model, dataset="shapes_panoptic")
    _toy_tflite(
        tmp_path / "postprocess.tflite",
        post_process,
        {
            common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY: tf.TensorSpec(
                [1, size, size, 2], tf.float32, common.PRED_PIXEL_SPACE_MASK_LOGITS_KEY
            ),
            common.PRED_TRANSFORMER_CLASS_LOGITS_KEY: tf.TensorSpec(
                [1, 2, 8], tf.float32, common.PRED_TRANSFORMER_CLASS_LOGITS_KEY
            ),
        },
    )
    predictor = load_predictor(model, dataset="shapes_panoptic")
    image = _two_halves(CROP, CROP)
    expected = _threshold_maps(
        tf.image.resize(image[None, ::4, ::4], [CROP, CROP], method="nearest")
    )[common.PRED_PANOPTIC_KEY][0]
    assert np.array_equal(predictor(image)[common.PRED_PANOPTIC_KEY], expected)
    with pytest.raises(model_files.ModelFileError, match="expected one image"):
        load_predictor(str(tmp_path / "postprocess.tflite"), dataset="shapes_panoptic")
