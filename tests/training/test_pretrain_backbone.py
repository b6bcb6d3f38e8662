"""Backbone pre-training writes a checkpoint the ImageNet-weights path loads."""

import os

import numpy as np
import pytest

from remax_tf.training import pretrain_backbone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pretrained"))
    request = pretrain_backbone.PretrainRequest(
        steps=4, batch_size=8, num_images=64, learning_rate=1e-3, num_val_images=40
    )
    return request, out, pretrain_backbone.pretrain(request, out, log_every=2)


def test_record_and_checkpoint_are_written(pretrained):
    request, out, record = pretrained
    assert record["request"]["steps"] == 4
    assert record["num_classes"] == 23  # 20 things + 3 stuff of v2
    assert 0.0 <= record["val_accuracy"] <= 1.0
    assert os.path.exists(record["checkpoint"] + ".index")
    assert pretrain_backbone.read_record(out) == record


def test_a_second_call_with_the_same_request_is_cached(pretrained):
    request, out, record = pretrained
    mtime = os.path.getmtime(record["checkpoint"] + ".index")
    again = pretrain_backbone.pretrain(request, out)
    assert again == record
    assert os.path.getmtime(record["checkpoint"] + ".index") == mtime


def test_pretrained_weights_restore_every_encoder_variable(pretrained):
    import tensorflow as tf

    from remax_tf.model.pixel_encoder import build_pixel_encoder
    from remax_tf.model.pixel_encoder.weights import load_pretrained_weights

    _, out, record = pretrained
    encoder = build_pixel_encoder("kmax_mobilenet_v3_small")
    report = load_pretrained_weights(encoder, out)
    assert report.layout == "encoder_item"
    assert not report.missing
    assert len(report.restored) == len(encoder.variables)
    reader = tf.train.load_checkpoint(record["checkpoint"])
    first = encoder.trainable_variables[0]
    key = next(
        k
        for k in reader.get_variable_to_shape_map()
        if k.startswith("encoder/")
        and reader.get_variable_to_shape_map()[k] == first.shape.as_list()
        and np.allclose(reader.get_tensor(k), first.numpy())
    )
    assert key
