"""build_dataset: batches, determinism, evaluation path, clear errors."""

from google.protobuf import text_format
import numpy as np
import pytest
import tensorflow as tf

from remax_tf import common
from remax_tf.data import build_dataset
from remax_tf.data import tfrecord
from remax_tf.postprocess import undo_resize_and_pad
from remax_tf.protos import dataset_pb2

# The COCO recipe of DeepLab2's kMaX configs at a test-sized crop.
COCO_RECIPE = """
dataset: "coco_panoptic"
batch_size: 2
crop_size: 129 crop_size: 129
min_resize_value: 129 max_resize_value: 129
augmentations {
  min_scale_factor: 0.3 max_scale_factor: 1.7 scale_factor_step_size: 0.1
  autoaugment_policy_name: "simple_classification_policy"
  panoptic_copy_paste {
    panoptic_copy_paste_scale: 0.5
    panoptic_copy_paste_thing_option: "all"
    panoptic_copy_paste_stuff_option: "random"
    panoptic_copy_paste_void_option: "none"
  }
}
thing_id_mask_annotations: true
"""


def _options(text, pattern, **fields):
    options = text_format.Parse(text, dataset_pb2.DatasetOptions())
    options.file_pattern.append(str(pattern))
    for key, value in fields.items():
        setattr(options, key, value)
    return options


def _batches(options, count, **kwargs):
    iterator = iter(build_dataset(options, is_training=True, **kwargs))
    return [{k: v.numpy() for k, v in next(iterator).items()} for _ in range(count)]


@pytest.fixture(scope="module")
def seeded_runs(coco_records):
    pattern = coco_records / "val-*.tfrecord"
    first = _batches(_options(COCO_RECIPE, pattern, seed=7, deterministic=True), 2)
    second = _batches(_options(COCO_RECIPE, pattern, seed=7, deterministic=True), 2)
    return first, second


def test_training_batches_have_the_documented_shapes(seeded_runs):
    batch = seeded_runs[0][0]
    expected = {
        common.IMAGE: ((2, 129, 129, 3), np.float32),
        common.GT_SEMANTIC_KEY: ((2, 129, 129), np.int32),
        common.GT_PANOPTIC_KEY: ((2, 129, 129), np.int32),
        common.GT_IS_CROWD: ((2, 129, 129), np.int32),
        common.GT_THING_ID_MASK_KEY: ((2, 129, 129), np.int32),
        common.GT_THING_ID_CLASS_KEY: ((2, 128), np.int32),
        common.SEMANTIC_LOSS_WEIGHT_KEY: ((2, 129, 129), np.float32),
    }
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
    image = batch[common.IMAGE]
    assert image.min() >= 0 and image.max() <= 255


def test_targets_agree_with_the_panoptic_label(seeded_runs):
    for batch in seeded_runs[0]:
        for i in range(2):
            panoptic = batch[common.GT_PANOPTIC_KEY][i]
            mask = batch[common.GT_THING_ID_MASK_KEY][i]
            classes = batch[common.GT_THING_ID_CLASS_KEY][i]
            np.testing.assert_array_equal(
                batch[common.GT_SEMANTIC_KEY][i], panoptic // 256
            )
            for thing_id in range(int((classes >= 0).sum())):
                values = np.unique(panoptic[mask == thing_id])
                assert len(values) == 1 and values[0] // 256 == classes[thing_id]


def test_same_seed_gives_identical_batches(seeded_runs):
    # (That another seed gives other samples is tested on the sample functions
    # in test_preprocessing.py, without building a third pipeline.)
    first, second = seeded_runs
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # The batches are augmented samples, not copies of one another.
    assert not np.array_equal(first[0][common.IMAGE], first[1][common.IMAGE])


def test_batch_is_split_over_replicas(coco_records):
    options = _options(
        COCO_RECIPE, coco_records / "val-*.tfrecord", seed=1, batch_size=4
    )
    options.ClearField("augmentations")
    context = tf.distribute.InputContext(
        num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2
    )
    (batch,) = _batches(options, 1, input_context=context)
    assert batch[common.IMAGE].shape == (2, 129, 129, 3)


def test_eval_path_keeps_raw_labels_and_can_be_undone(coco_records):
    options = _options(COCO_RECIPE, coco_records / "val-*.tfrecord", batch_size=1)
    samples = list(build_dataset(options, is_training=False))
    assert len(samples) == 2
    sizes = {}
    for sample in samples:
        name = sample[common.IMAGE_NAME].numpy()[0].decode()
        raw = sample[common.GT_PANOPTIC_RAW].numpy()[0]
        resized_size = sample[common.RESIZED_SIZE].numpy()[0]
        raw_size = sample[common.GT_SIZE_RAW].numpy()[0]
        sizes[name] = (tuple(raw_size), tuple(resized_size))
        assert raw.shape == tuple(raw_size)
        assert sample[common.IMAGE].shape == (1, 129, 129, 3)
        assert sample[common.RESIZED_IMAGE].shape[1:3] == tuple(resized_size)
        np.testing.assert_array_equal(sample[common.GT_SEMANTIC_RAW][0], raw // 256)
        padded = sample[common.GT_PANOPTIC_KEY][0]
        # Bottom-right padding is void.
        assert np.all(padded.numpy()[resized_size[0] :] == 0)
        restored = undo_resize_and_pad(padded[None], resized_size, raw_size)[0]
        agreement = np.mean(restored.numpy() // 256 == raw // 256)
        assert agreement > 0.9, (name, agreement)
    assert sizes == {
        "000000142238": ((427, 640), (86, 129)),
        "000000439180": ((360, 640), (72, 129)),
    }


def test_eval_without_labels_yields_images_and_sizes(coco_records):
    options = _options(COCO_RECIPE, coco_records / "val-*.tfrecord", batch_size=2)
    options.decode_groundtruth_label = False
    (batch,) = list(build_dataset(options, is_training=False))
    assert set(batch) == {
        common.IMAGE,
        common.IMAGE_NAME,
        common.RESIZED_IMAGE,
        common.RESIZED_SIZE,
        common.GT_SIZE_RAW,
    }
    # Padded batch of two images of different resized heights.
    assert batch[common.RESIZED_IMAGE].shape == (2, 86, 129, 3)
    np.testing.assert_array_equal(batch[common.RESIZED_SIZE], [[86, 129], [72, 129]])


def test_unmatched_file_pattern_names_the_pattern(tmp_path):
    options = _options(COCO_RECIPE, tmp_path / "train-*.tfrecord")
    with pytest.raises(
        FileNotFoundError, match=r"train-\*\.tfrecord' matches no file.*build_coco_data"
    ):
        build_dataset(options, is_training=True)


def _bad_record(path, value):
    label = np.full((40, 40), 1 * 256 + 1, np.int32)
    label[5, 7] = value
    image = tf.io.encode_png(np.zeros((40, 40, 3), np.uint8)).numpy()
    tfrecord.write_shard(
        str(path), [tfrecord.make_example(image, "png", "broken_image", 40, 40, label)]
    )


@pytest.mark.parametrize(
    "value, match",
    [
        # Stuff class 133 with instance 300 >= 256 overflows into class 134.
        (133 * 256 + 300, r"broken_image.*semantic id 134 .*does not have"),
        (100 * 256 + 5, r"broken_image.*stuff class 100 the instance id 5"),
        (-3, r"broken_image.*label value -3"),
    ],
)
def test_bad_labels_stop_the_pipeline_naming_the_image(tmp_path, value, match):
    _bad_record(tmp_path / "bad-00000-of-00001.tfrecord", value)
    options = _options(
        'dataset: "coco_panoptic" batch_size: 1 crop_size: 33 crop_size: 33',
        tmp_path / "bad-*.tfrecord",
        seed=1,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        next(iter(build_dataset(options, is_training=True)))


def test_options_are_validated(coco_records):
    pattern = coco_records / "val-*.tfrecord"
    options = _options(COCO_RECIPE, pattern)
    options.augmentations.autoaugment_policy_name = "nope"
    with pytest.raises(KeyError, match="unknown autoaugment_policy_name 'nope'"):
        build_dataset(options, is_training=True)
    options = _options(COCO_RECIPE, pattern)
    del options.crop_size[:]
    with pytest.raises(ValueError, match="crop_size must hold two positive numbers"):
        build_dataset(options, is_training=True)
    options = _options(COCO_RECIPE, pattern, dataset="coco")
    with pytest.raises(
        KeyError, match="unknown dataset 'coco'; known datasets: .*coco_panoptic"
    ):
        build_dataset(options, is_training=True)
