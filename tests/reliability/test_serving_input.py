"""The SavedModel signatures check their input: a wrong rank or channel
count fails with a message naming the expected shape and the one given;
grey and RGBA images are read as ``remax_tf.predict`` reads them."""

import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common

CROP = 65


@pytest.fixture(scope="module")
def signatures(exported):
    return tf.saved_model.load(str(exported / "saved_model")).signatures


def _image(channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, [CROP, 48, channels], dtype=np.uint8)


@pytest.mark.parametrize(
    "name, shape, expected",
    [
        ("serving_default", [2, CROP, CROP, 3], "one uint8 image [height, width, 3]"),
        ("serving_default", [CROP, CROP, 2], "one uint8 image [height, width, 3]"),
        ("serving_default", [CROP, CROP], "one uint8 image [height, width, 3]"),
        ("serving_default", [], "one uint8 image [height, width, 3]"),
        ("serve_batch", [CROP, CROP, 3], "uint8 images [batch, height, width, 3]"),
        ("serve_batch", [1, CROP, CROP, 5], "uint8 images [batch, height, width, 3]"),
    ],
)
def test_wrong_shapes_are_named(signatures, name, shape, expected):
    function = signatures[name]
    (key,) = function.structured_input_signature[1]
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        function(**{key: tf.zeros(shape, tf.uint8)})
    message = raised.value.message
    assert f"{name} expects {expected}" in message
    assert "got shape" in message and " ".join(str(s) for s in shape) in message


def test_wrong_dtype_names_uint8(signatures):
    with pytest.raises(tf.errors.InvalidArgumentError, match="uint8"):
        signatures["serving_default"](image=tf.zeros([CROP, CROP, 3], tf.float32))


def test_grey_and_rgba_are_read_as_predict_reads_them(signatures):
    serve = signatures["serving_default"]
    rgb = _image()
    grey = rgb[..., :1]
    rgba = np.concatenate([rgb, _image(1, seed=1)], -1)

    def panoptic(image):
        return serve(image=tf.constant(image))[common.PRED_PANOPTIC_KEY].numpy()

    want = panoptic(rgb)
    assert want.shape == rgb.shape[:2]
    np.testing.assert_array_equal(panoptic(rgba), want)
    np.testing.assert_array_equal(panoptic(grey), panoptic(np.repeat(grey, 3, -1)))
    batch = signatures["serve_batch"](images=tf.constant(rgba[None]))
    np.testing.assert_array_equal(batch[common.PRED_PANOPTIC_KEY][0].numpy(), want)
