"""shapes_panoptic_v2: 20 thing classes by shape x texture x colour."""

import hashlib

import numpy as np
import pytest

from remax_tf.data import datasets
from remax_tf.data import shapes

DESCRIPTOR = datasets.get_dataset_descriptor("shapes_panoptic_v2")
DIVISOR = DESCRIPTOR.panoptic_label_divisor


@pytest.fixture(scope="module")
def rendered():
    return [
        shapes.render(shapes.image_rng(0, "train", i), shapes.V2_CONFIG)
        for i in range(24)
    ]


def test_descriptor_matches_the_class_set():
    assert DESCRIPTOR.num_classes == 24  # void + 20 things + 3 stuff
    assert tuple(DESCRIPTOR.thing_class_ids) == shapes.V2.thing_ids
    assert len(shapes.V2.thing_ids) == 20
    assert DESCRIPTOR.class_names[1] == "plain disc"
    assert DESCRIPTOR.class_names[20] == "checkered cross"
    assert DESCRIPTOR.class_names[21:] == ("ground", "water", "foliage")
    assert [n for _, n, _ in shapes.V2.metadata()] == list(DESCRIPTOR.class_names[1:])


def test_every_image_has_two_to_six_things_and_valid_labels(rendered):
    for image, panoptic in rendered:
        assert image.shape == (129, 129, 3) and image.dtype == np.uint8
        semantic, instance = panoptic // DIVISOR, panoptic % DIVISOR
        assert set(np.unique(semantic)) <= set(range(DESCRIPTOR.num_classes))
        things = {
            (c, i)
            for c, i in zip(semantic.ravel(), instance.ravel())
            if c in shapes.V2.thing_ids and i > 0
        }
        # Occlusion may hide a drawn thing completely; most survive.
        assert 1 <= len(things) <= 6
        for cls in shapes.V2.stuff_ids:
            assert not np.any(instance[semantic == cls])


def test_class_hues_overlap_but_differ_on_average():
    # A class's colour comes from its hue range; 19 of the 20 pairs of
    # neighbouring ranges overlap (one gap of 0.09 on the hue circle).
    hues = sorted(t.hue for t in shapes.V2.things)
    gaps = np.diff(hues + [hues[0] + 1])
    assert np.sum(gaps < 2 * shapes.V2_HUE_SPREAD) == 19
    assert len(set(np.round(hues, 6))) == 20


def test_textures_differ_between_families():
    # Same shape and hue range, two families: pixel variance inside the thing
    # is low for plain, high for striped / checkered.
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    spread = {}
    for texture_index, name in enumerate(shapes.TEXTURES):
        thing = shapes.V2.things[texture_index]  # disc, each texture
        assert thing.texture == name
        values = [
            shapes._v2_appearance(np.random.default_rng(s), thing, yy, xx)
            .std(axis=(0, 1))
            .mean()
            for s in range(8)
        ]
        spread[name] = float(np.mean(values))
    assert spread["plain"] < 0.5 * min(spread["striped"], spread["checkered"])


def test_shapes_panoptic_is_unchanged_by_the_v2_code():
    # The v1 stream: same request, same bytes as before v2 existed (a digest
    # of 12 train images of seed 0, recorded before the change).

    digest = hashlib.sha256()
    for i in range(12):
        image, panoptic = shapes.render(shapes.image_rng(0, "train", i))
        digest.update(image.tobytes())
        digest.update(panoptic.tobytes())
    assert digest.hexdigest() == V1_DIGEST


def test_object_crops_hold_one_centred_thing():
    for i in range(10):
        image, cls = shapes.render_object(
            shapes.image_rng(1, "train", i), shapes.V2_CONFIG, 65
        )
        assert image.shape == (65, 65, 3)
        assert cls in shapes.V2.thing_ids


V1_DIGEST = "1893db42eddd5efb698fe8db28dd25516ba815d2d8f497e94eba44d028a43781"
