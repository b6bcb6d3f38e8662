"""The candidate-only mask-wise post-processing equals the previous one bitwise.

:func:`remax_tf.postprocess.maskwise_assignment` visits only the slots that
pass their class threshold; ``reference_maskwise.py`` is the implementation
it replaced (all NQ slots pasted in rank order, DeepLab2's rules). Every
field of the assignment and the panoptic map must be identical, eagerly and
in a ``tf.function``, on:

* random logits with COCO's 128 slots and 133 classes (+ void), quantised so
  that ranking scores, class confidences and pixel probabilities tie;
* empty images (no slot passes; or slots pass but no pixel reaches the
  pixel threshold);
* logits saved from a trained demo model (``testdata/maskwise_logits.npz``,
  written by ``tests/testdata/make_maskwise_logits.py``).
"""

import importlib.util
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.postprocess.maskwise import maskwise_assignment
from remax_tf.postprocess.panoptic_merge import merge_to_panoptic
from remax_tf.postprocess.slot_predictions import resize_mask_logits

COCO_SLOTS, COCO_CLASSES, COCO_THINGS = 128, 133, 80
LOW_RES = 17  # -> 65x65 output, corners aligned
COCO_SETTINGS = dict(
    pixel_confidence_threshold=0.4,
    thing_threshold=0.7,
    stuff_threshold=0.5,
    overlapping_threshold=0.8,
    reorder_class_weight=1.0,
    reorder_mask_weight=1.0,
)
FIELDS = ("mask_id_plus_one", "class_index", "confident", "instance_score")
FIXTURE = pathlib.Path(__file__).parents[1] / "testdata" / "maskwise_logits.npz"


def _load_reference():
    # The tests run with --import-mode=importlib: load the sibling by path.
    path = pathlib.Path(__file__).with_name("reference_maskwise.py")
    spec = importlib.util.spec_from_file_location("reference_maskwise", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_maskwise_assignment


reference_maskwise_assignment = _load_reference()


def random_logits(seed, batch=3, slots=COCO_SLOTS, classes=COCO_CLASSES):
    """Blob-shaped mask logits and peaked class logits, on a coarse grid so
    that many values tie exactly."""
    rng = np.random.default_rng(seed)
    masks = rng.normal(0.0, 1.5, (batch, LOW_RES, LOW_RES, slots))
    rows, cols = np.mgrid[:LOW_RES, :LOW_RES]
    for b in range(batch):
        for s in range(slots):
            cy, cx = rng.integers(0, LOW_RES, 2)
            radius = rng.uniform(1.0, 6.0)
            inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
            masks[b, inside, s] += rng.uniform(2.0, 9.0)
    masks = np.round(masks * 2.0) / 2.0
    logits = rng.normal(0.0, 1.0, (batch, slots, classes + 1))
    peak = rng.integers(0, classes + 1, (batch, slots))
    boost = rng.uniform(0.0, 14.0, (batch, slots))
    np.put_along_axis(
        logits,
        peak[..., None],
        np.take_along_axis(logits, peak[..., None], -1) + boost[..., None],
        -1,
    )
    logits = np.round(logits)
    # Exact duplicates: equal confidences and equal (or equal-scoring) masks.
    logits[:, 1::7] = logits[:, 0:1]
    masks[..., 2::9] = masks[..., 3:4]
    return masks.astype(np.float32), logits.astype(np.float32)


def assignments(masks, classes, num_things, graph, **settings):
    masks = tf.constant(masks)
    classes = tf.constant(classes)
    size = (masks.shape[1] - 1) * 4 + 1
    num_classes = classes.shape[-1] - 1

    def run(function):
        def both(m, c):
            resized = resize_mask_logits(m, (size, size))
            assignment = function(
                m, resized, c, num_thing_classes=num_things, **settings
            )
            panoptic = merge_to_panoptic(
                assignment,
                list(range(1, num_classes + 1)),
                num_thing_classes=num_things,
                ignore_label=0,
                label_divisor=256,
                num_mask_slots=int(m.shape[-1]),
                thing_area_limit=20,
                stuff_area_limit=60,
            )
            return assignment, panoptic

        if graph:
            both = tf.function(both, autograph=False)
        return both(masks, classes)

    return run(maskwise_assignment), run(reference_maskwise_assignment)


def assert_bitwise_equal(new, old):
    (new_assignment, new_panoptic), (old_assignment, old_panoptic) = new, old
    for field in new_assignment._fields:
        got = getattr(new_assignment, field).numpy()
        want = getattr(old_assignment, field).numpy()
        assert got.dtype == want.dtype, field
        # Bitwise: compare the bytes (float -0.0 vs 0.0 and NaNs included).
        assert got.tobytes() == want.tobytes(), field
    assert np.array_equal(new_panoptic.numpy(), old_panoptic.numpy())


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_coco_sized_random_logits(seed, graph):
    masks, classes = random_logits(seed)
    new, old = assignments(masks, classes, COCO_THINGS, graph, **COCO_SETTINGS)
    assert_bitwise_equal(new, old)
    # The data exercises the rules: pasted things and stuff, rejected slots.
    panoptic = new[1].numpy()
    assert (panoptic % 256 > 0).any() and ((panoptic // 256) > COCO_THINGS).any()
    assert new[0].confident.numpy().mean() < 0.99


@pytest.mark.parametrize(
    "settings",
    [
        # Low pixel threshold: up to four masks overlap on a pixel.
        dict(COCO_SETTINGS, pixel_confidence_threshold=0.2, overlapping_threshold=0.5),
        # No overlap rule, rank by mask score only; rank by class only.
        dict(COCO_SETTINGS, overlapping_threshold=0.0, reorder_class_weight=0.0),
        dict(COCO_SETTINGS, reorder_mask_weight=0.0, thing_threshold=0.3),
        # Everything passes; nothing passes.
        dict(COCO_SETTINGS, thing_threshold=0.0, stuff_threshold=0.0),
        dict(COCO_SETTINGS, thing_threshold=1.0, stuff_threshold=1.0),
    ],
)
def test_other_settings(settings):
    masks, classes = random_logits(2, batch=2)
    assert_bitwise_equal(*assignments(masks, classes, COCO_THINGS, False, **settings))


def test_empty_images():
    masks, classes = random_logits(3, batch=4)
    # Image 0: every slot predicts void (no slot passes a threshold).
    classes[0, :, -1] = 30.0
    # Image 1: slots pass, but all logits are equal: every probability is
    # 1/128, no pixel is in any mask.
    masks[1] = 0.0
    # Image 2: a single passing slot.
    classes[2, :, -1] = 30.0
    classes[2, 5, 3] = 60.0
    masks[2, :8, :8, 5] = 30.0
    new, old = assignments(masks, classes, COCO_THINGS, True, **COCO_SETTINGS)
    assert_bitwise_equal(new, old)
    confident = new[0].confident.numpy()
    assert not confident[0].any() and not confident[1].any()
    assert (new[0].instance_score.numpy()[0] == 0).all()
    assert confident[2].any() and confident[3].any()


def test_many_pixels_in_two_masks():
    """Slot pairs with equal mask logits: both members cover (probability
    about 0.5 each) wherever they dominate, so first/second-candidate pixels
    abound and some pairs are rejected by the overlap rule."""
    masks, classes = random_logits(5, batch=2)
    masks[..., 1::2] = masks[..., 0::2]
    masks[..., 1::4] += 0.5
    new, old = assignments(masks, classes, COCO_THINGS, True, **COCO_SETTINGS)
    assert_bitwise_equal(new, old)
    settings = dict(COCO_SETTINGS, overlapping_threshold=0.3)
    assert_bitwise_equal(*assignments(masks, classes, COCO_THINGS, True, **settings))


def test_second_mask_gets_pixels_its_unpasted_first_left():
    """Rows 0-3: slots C (rank 1) and A (rank 2) cover; rows 4-5: A and B
    (rank 3); rows 6-7: B alone. C is pasted; A keeps 2 of its 6 rows free,
    below the overlap threshold, and is not pasted; so B's rows 4-5 are free
    and B is pasted on rows 4-7."""
    size, on = 8, 10.0
    logits = np.full((1, size, size, 3), -on, np.float32)
    logits[0, 0:4, :, 0] = on  # C
    logits[0, 0:6, :, 1] = on  # A
    logits[0, 4:8, :, 2] = on  # B
    rows = []
    for index, confidence in ((0, 0.95), (1, 0.9), (2, 0.85)):
        probs = np.full(8, (1.0 - confidence) / 7)
        probs[index] = confidence
        rows.append(np.log(probs))
    classes = tf.constant(np.array(rows, np.float32)[None])
    masks = tf.constant(logits)
    settings = dict(COCO_SETTINGS, num_thing_classes=4, reorder_mask_weight=0.0)
    new = maskwise_assignment(masks, masks, classes, **settings)
    old = reference_maskwise_assignment(masks, masks, classes, **settings)
    for field in new._fields:
        got, want = getattr(new, field).numpy(), getattr(old, field).numpy()
        assert got.tobytes() == want.tobytes(), field
    ids = new.mask_id_plus_one.numpy()[0][:, 0]
    assert ids.tolist() == [1, 1, 1, 1, 3, 3, 3, 3]


def test_batch_of_one_with_few_slots():
    masks, classes = random_logits(4, batch=1, slots=6, classes=7)
    new, old = assignments(masks, classes, 4, True, **COCO_SETTINGS)
    assert_bitwise_equal(new, old)


def test_trained_demo_model_logits():
    """Logits of a trained demo model (``shapes_v2_remax`` at crop 65: 64
    slots, 23 classes; 400 steps) on four validation images, with the demo's
    thresholds."""
    data = np.load(FIXTURE)
    settings = dict(
        pixel_confidence_threshold=float(data["pixel_confidence_threshold"]),
        thing_threshold=float(data["thing_threshold"]),
        stuff_threshold=float(data["stuff_threshold"]),
        overlapping_threshold=float(data["overlapping_threshold"]),
        reorder_class_weight=float(data["reorder_class_weight"]),
        reorder_mask_weight=float(data["reorder_mask_weight"]),
    )
    masks = data["pixel_space_mask_logits"].astype(np.float32)
    classes = data["transformer_class_logits"].astype(np.float32)
    num_things = int(data["num_thing_classes"])
    for graph in (False, True):
        new, old = assignments(masks, classes, num_things, graph, **settings)
        assert_bitwise_equal(new, old)
    # A trained model: a few of the 64 slots pass, segments exist.
    assert new[0].confident.numpy().any()
    assert not new[0].confident.numpy().all()


def test_tflite_files_agree_with_the_previous_post_processing():
    """Converted to TFLite (builtin ops only, XNNPACK interpreter), the new
    post-processing gives the same arrays as the previous one converted the
    same way, on the trained model's logits."""
    from ai_edge_litert.interpreter import Interpreter

    data = np.load(FIXTURE)
    masks = data["pixel_space_mask_logits"][:1].astype(np.float32)
    classes = data["transformer_class_logits"][:1].astype(np.float32)
    settings = dict(
        COCO_SETTINGS,
        thing_threshold=float(data["thing_threshold"]),
        stuff_threshold=float(data["stuff_threshold"]),
    )
    size = (masks.shape[1] - 1) * 4 + 1
    specs = [tf.TensorSpec(masks.shape, tf.float32), tf.TensorSpec(classes.shape)]

    def lite_outputs(function):
        def post(m, c):
            resized = resize_mask_logits(m, (size, size))
            assignment = function(
                m,
                resized,
                c,
                num_thing_classes=int(data["num_thing_classes"]),
                **settings,
            )
            return [tf.cast(t, tf.float32) for t in assignment]

        concrete = tf.function(
            post, input_signature=specs, autograph=False
        ).get_concrete_function()
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        interpreter = Interpreter(model_content=converter.convert(), num_threads=2)
        interpreter.allocate_tensors()
        for detail, value in zip(interpreter.get_input_details(), (masks, classes)):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        outputs = interpreter.get_output_details()
        return sorted(
            (d["name"], interpreter.get_tensor(d["index"]).tobytes()) for d in outputs
        )

    new, old = (
        lite_outputs(maskwise_assignment),
        lite_outputs(reference_maskwise_assignment),
    )
    assert [value for _, value in new] == [value for _, value in old]
