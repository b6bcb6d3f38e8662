"""Panoptic copy-paste: pasted pixels carry their label, pasted instances
get new unique ids, options select what is pasted."""

import numpy as np
import pytest
from scipy import ndimage
import tensorflow as tf

from remax_tf.data import copy_paste
from remax_tf.data import preprocessing
from remax_tf.data import samples

DIVISOR, IGNORE = 256, 0
THINGS, STUFF = (1, 2), (3, 4)
PAD = copy_paste.paste_padding_value(IGNORE, DIVISOR)


def _colour(label):
    """An image whose colour encodes the panoptic value."""
    label = np.asarray(label)
    return np.stack([label % 256, label // 256, (label * 7) % 251], -1).astype(
        np.float32
    )


def _canvas():
    label = np.full((12, 12), 3 * DIVISOR, np.int32)  # stuff 3
    label[1:4, 1:4] = 1 * DIVISOR + 1
    label[6:9, 6:9] = 1 * DIVISOR + 2
    label[10:, :] = 0  # void
    return label


def _paste():
    label = np.full((12, 12), 4 * DIVISOR, np.int32)  # stuff 4
    label[0:3, 6:9] = 1 * DIVISOR + 1  # same ids as the canvas' instances
    label[5:7, 0:3] = 1 * DIVISOR + 2
    label[9:11, 9:11] = 2 * DIVISOR + 1
    label[:, 11] = PAD  # padding of the scaled second sample
    label[11, :5] = 0  # void
    return label


def _run(thing="all", stuff="none", void="none", seed=(0, 0), canvas=None, paste=None):
    canvas = _canvas() if canvas is None else canvas
    paste = _paste() if paste is None else paste
    image, label = copy_paste.panoptic_copy_paste(
        tf.constant(_colour(canvas)),
        tf.constant(canvas),
        tf.constant(_colour(paste)),
        tf.constant(paste),
        label_divisor=DIVISOR,
        ignore_label=IGNORE,
        thing_ids=THINGS,
        stuff_ids=STUFF,
        thing_option=thing,
        stuff_option=stuff,
        void_option=void,
        seed=tf.constant(seed),
        image_name="test_image",
    )
    return image.numpy(), label.numpy()


def _renumbered(paste):
    """The paste label with DeepLab2's new instance ids divisor - 1 - id."""
    instance = paste % DIVISOR
    new = np.where(instance == 0, 0, DIVISOR - 1 - instance)
    return paste // DIVISOR * DIVISOR + new


@pytest.mark.parametrize("seed", [(0, 0), (1, 5), (7, 3)])
def test_all_things_are_pasted_with_new_unique_ids(seed):
    canvas, paste = _canvas(), _paste()
    image, label = _run(seed=seed)
    things = (paste // DIVISOR == 1) | (paste // DIVISOR == 2)
    np.testing.assert_array_equal(label[things], _renumbered(paste)[things])
    np.testing.assert_array_equal(label[~things], canvas[~things])
    # Labels stay aligned with pixels: the colour of every pixel is its source's.
    source = np.where(things, _renumbered(paste), canvas)
    colour_source = np.where(things, paste, canvas)
    np.testing.assert_array_equal(image, _colour(colour_source))
    # Pasted instances: ids 254, 253 (class 1) and 254 (class 2), none of
    # which collides with the canvas' instances 1 and 2 of class 1.
    canvas_ids = set(np.unique(canvas[canvas % DIVISOR > 0]).tolist())
    pasted_ids = set(np.unique(source[things]).tolist())
    assert pasted_ids == {DIVISOR + 254, DIVISOR + 253, 2 * DIVISOR + 254}
    assert not canvas_ids & pasted_ids
    # Every surviving canvas instance keeps its id; each id is one segment.
    assert set(np.unique(label).tolist()) >= pasted_ids | {3 * DIVISOR}


def test_none_pastes_nothing_and_padding_is_never_pasted():
    canvas = _canvas()
    _, label = _run(thing="none", stuff="none", void="none")
    np.testing.assert_array_equal(label, canvas)
    _, label = _run(thing="all", stuff="all", void="all")
    paste = _paste()
    padding = paste == PAD
    np.testing.assert_array_equal(label[padding], canvas[padding])
    np.testing.assert_array_equal(label[~padding], _renumbered(paste)[~padding])


def test_random_pastes_whole_segments():
    paste = _paste()
    counts = set()
    for s in range(10):
        _, label = _run(thing="random", stuff="random", void="random", seed=(s, 1))
        from_paste = label == _renumbered(paste)
        # A segment of the second sample is pasted entirely or not at all.
        for value in np.unique(paste):
            region = from_paste[paste == value]
            assert region.all() or not region.any(), value
        assert not from_paste[paste == PAD].any()
        counts.add(int((label != _canvas()).sum()))
    assert len(counts) > 2  # the random draw varies with the seed


def test_instance_ids_must_stay_below_half_the_divisor():
    paste = _paste()
    paste[0, 0] = 1 * DIVISOR + 200
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="test_image.*label_divisor / 2 = 128"
    ):
        _run(paste=paste)


def test_bad_option_is_named():
    with pytest.raises(
        ValueError, match="panoptic_copy_paste_stuff_option must be one of"
    ):
        _run(stuff="some")


def test_augmented_sample_with_copy_paste_keeps_colours_on_labels():
    """Scale, pad, crop, flip and copy-paste together (samples.training_sample):
    every pixel away from a label boundary has the colour of its label."""

    values = [3 * DIVISOR, 4 * DIVISOR, DIVISOR + 1, DIVISOR + 2, 2 * DIVISOR + 1]
    rng = np.random.default_rng(4)

    def record(name):
        grid = rng.choice(values, size=(5, 6))
        label = np.kron(grid, np.ones((16, 16), np.int64)).astype(np.int32)
        return {"image": tf.constant(_colour(label).astype(np.uint8)),
                "label": tf.constant(label), "image_name": tf.constant(name)}  # fmt: skip

    spec = samples.SampleSpec(
        dataset_name="toy",
        label_divisor=DIVISOR,
        ignore_label=IGNORE,
        class_ids=THINGS + STUFF,
        thing_ids=THINGS,
        preprocess=preprocessing.PreprocessConfig(
            crop_size=(41, 41), min_scale_factor=0.5, max_scale_factor=1.5,
            scale_factor_step_size=0.25,
        ),
        copy_paste=samples.CopyPasteConfig(0.5, "all", "random", "none"),
    )  # fmt: skip
    checked = 0
    for seed in range(3):
        out = samples.training_sample(
            record("a"), tf.constant([seed, 0]), spec, record("b")
        )
        label = out["panoptic_gt"].numpy()
        image = out["image"].numpy()
        instance = label % DIVISOR
        # Undo the renumbering of pasted instances to find their colour.
        original = np.where(instance >= DIVISOR // 2, DIVISOR - 1 - instance, instance)
        source = label // DIVISOR * DIVISOR + original
        low = ndimage.minimum_filter(label, 5, mode="constant", cval=-1)
        inside = ndimage.maximum_filter(label, 5) == low  # not near a boundary
        content = inside & (label != 0)
        checked += content.sum()
        np.testing.assert_allclose(image[content], _colour(source)[content], atol=1e-3)
        pad = inside & (label == 0)
        np.testing.assert_allclose(image[pad], preprocessing.PAD_IMAGE_VALUE)
        # Pasted (renumbered) and original instances never share an id.
        assert set(np.unique(instance).tolist()) <= {0, 1, 2, 253, 254}
    assert checked > 1000  # of 3 x 41 x 41 pixels
