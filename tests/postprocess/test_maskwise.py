"""Mask-wise post-processing on constructed logits with known answers.

Images are 8x8 and split into row bands; a slot "owns" a band when its mask
logit there is +10 (probability ~1), two slots sharing a band get 0.5 each,
and slots are absent (-10) elsewhere. Class logits are log-probabilities with
a chosen confidence. Classes follow the shapes dataset: things 1..4 (class
indices 0..3), stuff 5..7 (indices 4..6), void 0, divisor 256.
"""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf.postprocess.maskwise import maskwise_assignment
from remax_tf.postprocess.panoptic_merge import merge_to_panoptic

THING_STUFF_IDS = (1, 2, 3, 4, 5, 6, 7)
NUM_THINGS = 4
NUM_CLASSES = len(THING_STUFF_IDS)
DIVISOR = 256
SIZE = 8
ON, OFF = 10.0, -10.0


def class_logits(specs):
    """specs: per slot (class index, confidence) -> [1, NQ, NC + 1] logits."""
    rows = []
    for index, confidence in specs:
        rest = (1.0 - confidence) / NUM_CLASSES  # spread over the others + void
        probs = np.full(NUM_CLASSES + 1, rest)
        probs[index] = confidence
        rows.append(np.log(probs))
    return tf.constant(np.array(rows)[None], tf.float32)


def mask_logits(bands, num_slots):
    """bands: per slot a list of (first row, last row + 1, logit)."""
    logits = np.full((1, SIZE, SIZE, num_slots), OFF, np.float32)
    for slot, slot_bands in enumerate(bands):
        for start, stop, value in slot_bands:
            logits[0, start:stop, :, slot] = value
    return tf.constant(logits)


def run(masks, classes, thing_area_limit=0, stuff_area_limit=0, **kwargs):
    settings = dict(
        num_thing_classes=NUM_THINGS,
        pixel_confidence_threshold=0.4,
        thing_threshold=0.7,
        stuff_threshold=0.5,
        overlapping_threshold=0.8,
        reorder_class_weight=1.0,
        reorder_mask_weight=1.0,
    )
    settings.update(kwargs)
    assignment = maskwise_assignment(masks, masks, classes, **settings)
    panoptic = merge_to_panoptic(
        assignment,
        THING_STUFF_IDS,
        num_thing_classes=NUM_THINGS,
        ignore_label=0,
        label_divisor=DIVISOR,
        num_mask_slots=int(masks.shape[-1]),
        thing_area_limit=thing_area_limit,
        stuff_area_limit=stuff_area_limit,
    )
    return panoptic.numpy()[0], assignment


def rows(panoptic, start, stop):
    values = np.unique(panoptic[start:stop])
    assert len(values) == 1, values
    return int(values[0])


def test_thing_and_stuff_confidence_thresholds():
    masks = mask_logits([[(0, 2, ON)], [(2, 4, ON)], [(4, 6, ON)], [(6, 8, ON)]], 4)
    classes = class_logits([(0, 0.8), (1, 0.6), (4, 0.6), (5, 0.45)])
    panoptic, assignment = run(masks, classes)
    assert rows(panoptic, 0, 2) == 1 * DIVISOR + 1  # thing 0.8 >= 0.7, rank 1
    assert rows(panoptic, 2, 4) == 0  # thing 0.6 < 0.7
    assert rows(panoptic, 4, 6) == 5 * DIVISOR  # stuff 0.6 >= 0.5, instance 0
    assert rows(panoptic, 6, 8) == 0  # stuff 0.45 < 0.5
    scores = assignment.semantic_score.numpy()[0]
    assert scores[0, 0] == pytest.approx(0.8) and scores[4, 0] == pytest.approx(0.6)
    assert scores[2, 0] == 0.0


@pytest.mark.parametrize(
    "overlap, expected_rows_0_2",
    [(0.8, 0), (0.4, 1 * DIVISOR + 2)],
)
def test_overlap_rule(overlap, expected_rows_0_2):
    # Slot 0 (thing 1, conf 0.8) on rows 0-3, slot 1 (thing 2, conf 0.9) on rows
    # 2-5; rows 2-3 shared. Slot 1 ranks first and takes rows 2-5; slot 0 keeps
    # 16 of its 32 pixels, pasted only if 16 > 32 * overlap.
    masks = mask_logits(
        [[(0, 4, ON)], [(2, 6, ON)], [(6, 8, ON)]],
        3,
    )
    classes = class_logits([(0, 0.8), (1, 0.9), (4, 0.3)])
    panoptic, _ = run(masks, classes, overlapping_threshold=overlap)
    assert rows(panoptic, 2, 6) == 2 * DIVISOR + 1
    assert rows(panoptic, 0, 2) == expected_rows_0_2
    assert rows(panoptic, 6, 8) == 0  # stuff slot below its threshold


@pytest.mark.parametrize(
    "class_weight, mask_weight, expected",
    [
        # Ranked by class confidence: slot 0 (id 1), slot 1 (id 2), slot 2.
        (1.0, 0.0, (1 * DIVISOR + 1, 1 * DIVISOR + 1, 2 * DIVISOR + 2)),
        # Ranked by mask score: slot 2 (1.0, rejected), slot 1 (0.75, id 2),
        # slot 0 (0.54, id 3).
        (0.0, 1.0, (1 * DIVISOR + 3, 2 * DIVISOR + 2, 2 * DIVISOR + 2)),
    ],
)
def test_ranking_by_class_confidence_or_mask_score(class_weight, mask_weight, expected):
    # Slot 0: thing 1, conf 0.95, a weak mask (probability e / (e + 2) = 0.58 on
    # rows 0-1, 0.5 on the shared rows 2-3). Slot 1: thing 2, conf 0.8, a sharp
    # mask (0.5 on rows 2-3, 1 on rows 4-5). The first-ranked of the two gets
    # the shared rows; instance ids are 1 + rank.
    masks = mask_logits(
        [
            [(0, 2, 1.0), (2, 4, ON)],
            [(0, 2, 0.0), (2, 6, ON)],
            [(0, 2, 0.0), (6, 8, ON)],
        ],
        3,
    )
    classes = class_logits([(0, 0.95), (1, 0.8), (4, 0.3)])
    panoptic, _ = run(
        masks,
        classes,
        overlapping_threshold=0.4,
        reorder_class_weight=class_weight,
        reorder_mask_weight=mask_weight,
    )
    assert (
        rows(panoptic, 0, 2),
        rows(panoptic, 2, 4),
        rows(panoptic, 4, 6),
    ) == expected


def test_pixels_below_the_pixel_threshold_are_void():
    # Rows 0-3: all four slots at 0 -> probability 0.25 each, in no mask.
    masks = mask_logits(
        [[(0, 4, 0.0), (4, 8, ON)], [(0, 4, 0.0)], [(0, 4, 0.0)], [(0, 4, 0.0)]], 4
    )
    classes = class_logits([(4, 0.9), (0, 0.9), (1, 0.9), (2, 0.9)])
    panoptic, _ = run(masks, classes)
    assert rows(panoptic, 0, 4) == 0
    assert rows(panoptic, 4, 8) == 5 * DIVISOR


@pytest.mark.parametrize(
    "thing_limit, stuff_limit, expect_thing, expect_stuff",
    [(16, 32, True, True), (17, 32, False, True), (16, 33, True, False)],
)
def test_area_limits(thing_limit, stuff_limit, expect_thing, expect_stuff):
    # A 16-pixel thing (rows 0-1) and two 16-pixel slots of stuff class 6
    # (rows 2-3 and 4-5) that fuse into one 32-pixel segment.
    masks = mask_logits([[(0, 2, ON)], [(2, 4, ON)], [(4, 6, ON)], [(6, 8, ON)]], 4)
    classes = class_logits([(2, 0.9), (5, 0.9), (5, 0.8), (6, 0.3)])
    panoptic, _ = run(
        masks, classes, thing_area_limit=thing_limit, stuff_area_limit=stuff_limit
    )
    assert rows(panoptic, 0, 2) == (3 * DIVISOR + 1 if expect_thing else 0)
    assert rows(panoptic, 2, 6) == (6 * DIVISOR if expect_stuff else 0)


def test_no_confident_slot_gives_an_empty_map():
    masks = mask_logits([[(0, 8, ON)], [], [], []], 4)
    classes = class_logits([(0, 0.3), (4, 0.3), (1, 0.2), (5, 0.2)])
    panoptic, assignment = run(masks, classes)
    assert (panoptic == 0).all()
    # DeepLab2 zeroes the score maps of an image without detections.
    assert (assignment.instance_score.numpy() == 0).all()
    assert (assignment.mask_id_plus_one.numpy() == 1).all()


def test_batch_elements_are_independent():
    masks_a = mask_logits([[(0, 4, ON)], [(4, 8, ON)]], 2)
    masks_b = mask_logits([[(0, 8, ON)], []], 2)
    classes_a = class_logits([(0, 0.9), (4, 0.9)])
    classes_b = class_logits([(5, 0.9), (1, 0.2)])
    _, batched = run(
        tf.concat([masks_a, masks_b], 0), tf.concat([classes_a, classes_b], 0)
    )
    _, single_a = run(masks_a, classes_a)
    _, single_b = run(masks_b, classes_b)
    for field in ("mask_id_plus_one", "class_index", "confident", "semantic_score"):
        values = getattr(batched, field).numpy()
        assert np.array_equal(values[0], getattr(single_a, field).numpy()[0])
        assert np.array_equal(values[1], getattr(single_b, field).numpy()[0])
    assert batched.confident.numpy().all()


def _two_cover_masks(rng, count, pixels=400):
    """[1, 1, pixels, count] masks, each pixel in at most two of them."""
    covers = np.zeros((1, 1, pixels, count), bool)
    for pixel in range(pixels):
        picks = rng.choice(count, size=rng.integers(0, 3), replace=False)
        covers[0, 0, pixel, picks] = True
    return covers


def _chain_masks(count, width=10, shared=5):
    """Mask k overlaps mask k - 1 on ``shared`` of its ``width`` pixels (at
    most half, so no pixel is in three masks), so each decision hangs on the
    one before: pasted, refused, pasted, ..."""
    step = width - shared
    covers = np.zeros((1, 1, step * count + shared, count), bool)
    for k in range(count):
        covers[0, 0, k * step : k * step + width, k] = True
    return covers


@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paste_decisions_in_passes_equal_pasting_one_by_one(overlap, seed):
    """_paste_at_most_two_per_pixel decides all candidates in vectorised
    passes; the result must be the sequential paste's, also along a chain
    where every decision depends on the previous one (count passes)."""
    from remax_tf.postprocess.maskwise import _paste_at_most_two_per_pixel
    from remax_tf.postprocess.maskwise import _paste_sequentially

    rng = np.random.default_rng(seed)
    slots = 24
    for covers in (_two_cover_masks(rng, 20), _chain_masks(20)):
        count = covers.shape[-1]
        ranks = tf.constant(
            np.sort(rng.choice(slots, count, replace=False))[None], tf.int32
        )
        valid = tf.constant(np.arange(count)[None] < count - 2)
        args = (ranks, valid, overlap, slots)
        sequential = _paste_sequentially(tf.constant(covers), *args).numpy()
        covering = np.where(
            covers & valid.numpy()[:, None, None], np.arange(count), slots
        )
        in_passes = _paste_at_most_two_per_pixel(tf.constant(covering, tf.int32), *args)
        np.testing.assert_array_equal(in_passes.numpy(), sequential)
    if overlap == 0.5:
        # The chain alternates: half of each mask is shared with the previous,
        # and a candidate needs more than half free.
        pasted = {int(v) for v in np.unique(sequential)} - {0}
        assert pasted == {int(ranks[0, k]) + 1 for k in range(0, count - 2, 2)}
