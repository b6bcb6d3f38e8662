"""kmax_axial_resnet50: DeepLab2's Axial-ResNet-50 (MaX-S) pixel encoder."""

import functools

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.model.layers.residual_blocks import AxialBlock
from remax_tf.model.layers.residual_blocks import BottleneckBlock
from remax_tf.model.pixel_encoder import build_pixel_encoder

# Trainable parameters of DeepLab2's axial_resnet50 pixel encoder (built with
# DeepLab2's code, TF 2.20); also the encoder part of its kMaX axial-R50
# configs (74,415,512 - 33,072,088 of decoders and heads).
DEEPLAB2_AXIAL_RESNET50_PARAMS = 41343424
ENDPOINTS = {
    # name: (spatial size at 65x65, channels)
    "stage1": (33, 128),
    "res1": (33, 128),
    "stage2": (17, 256),
    "res2": (17, 256),
    "stage3": (9, 512),
    "res3": (9, 512),
    "stage4": (5, 1024),
    "res4": (5, 1024),
    "stage5": (3, 2048),
    "res5": (3, 2048),
}


@pytest.fixture(scope="module")
def encoder():
    norm_layer = functools.partial(
        tf_keras.layers.BatchNormalization, momentum=0.9, epsilon=1e-5
    )
    return build_pixel_encoder(
        "kmax_axial_resnet50",
        input_shape=[65, 65, 3],
        drop_path_keep_prob=0.8,
        norm_layer=norm_layer,
    )


def test_parameters_and_endpoints(encoder):
    params = sum(int(np.prod(v.shape)) for v in encoder.trainable_variables)
    assert params == DEEPLAB2_AXIAL_RESNET50_PARAMS
    outputs = encoder(tf.zeros([1, 65, 65, 3]), training=False)
    assert set(outputs) == set(ENDPOINTS)
    for name, (size, channels) in ENDPOINTS.items():
        assert outputs[name].shape.as_list() == [1, size, size, channels], name
    np.testing.assert_allclose(outputs["res5"], tf.nn.gelu(outputs["stage5"]))


def test_block_types_and_linear_drop_path(encoder):
    stages = {stage.name: stage._blocks for stage in encoder._stages}
    kinds = {name: [type(b) for b in blocks] for name, blocks in stages.items()}
    # Axial attention where the block's input stride is >= 16.
    assert kinds["stage3"] == [BottleneckBlock] * 4
    assert kinds["stage4"] == [BottleneckBlock] + [AxialBlock] * 5
    assert kinds["stage5"] == [AxialBlock] * 3
    keeps = {
        name: [b.drop_path_keep_prob for b in blocks] for name, blocks in stages.items()
    }
    # DeepLab2's linear schedule over 4 stages: 1 - 0.2 * stage / 4 with stage
    # log2(stride) - 1, only at strides >= 16.
    assert keeps["stage3"] == [1.0] * 4
    np.testing.assert_allclose(keeps["stage4"], [1.0] + [0.85] * 5)
    np.testing.assert_allclose(keeps["stage5"], [0.85, 0.8, 0.8])
    bn = encoder._stem._convs[0]._batch_norm
    assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)
