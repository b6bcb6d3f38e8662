"""Tests of the kMaX ResNet-50 pixel encoder (remax_tf.model.pixel_encoder.resnet)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from remax_tf.model.layers.drop_path import DropPath
from remax_tf.model.pixel_encoder import build_pixel_encoder
from remax_tf.model.pixel_encoder.conv_same import conv2d_same

# DeepLab2's kMaX-R50 encoder (tests/testdata/reference/deeplab2_kmax_r50_params.json).
DEEPLAB2_R50_ENCODER_PARAMS = 23_508_032
DEEPLAB2_R50_ENCODER_GMACS_641 = 35.173
# BN moving mean / variance of the 53 BN layers.
R50_NON_TRAINABLE = 53_120
R50_ENDPOINTS_65 = [(33, 64), (17, 256), (9, 512), (5, 1024), (3, 2048)]
R50_SIZES_641 = [321, 161, 81, 41, 21]


def _conv_macs(model: tf_keras.Model) -> int:
    """Multiply-adds of the Conv2D / DepthwiseConv2D layers of a static-shape model."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.DepthwiseConv2D):
            h, w, c = layer.output.shape[1:]
            total += h * w * c * int(np.prod(layer.kernel_size))
        elif isinstance(layer, tf_keras.layers.Conv2D):
            h, w, c = layer.output.shape[1:]
            fan_in = int(np.prod(layer.kernel_size)) * layer.input.shape[-1]
            total += h * w * c * fan_in // layer.groups
    return total


@pytest.fixture(scope="module")
def resnet50():
    # Drop path on, with the default schedule (DeepLab2's 'linear'), so the
    # schedule can be checked; inference is unaffected.
    return build_pixel_encoder("kmax_resnet50", drop_path_keep_prob=0.8)


@pytest.fixture(scope="module")
def outputs(resnet50, images_65):
    return resnet50(images_65, training=False)


def test_endpoint_shapes_at_65(outputs, assert_endpoints):
    assert_endpoints(outputs, R50_ENDPOINTS_65)


def test_res_is_relu_of_stage(outputs):
    for level in range(1, 6):
        np.testing.assert_array_equal(
            outputs[f"res{level}"], tf.nn.relu(outputs[f"stage{level}"])
        )
    # stage endpoints are pre-activation (DeepLab2): the stem's BN output has
    # negative values. (Deeper stages start >= 0: zero-gamma blocks add 0 to
    # a ReLU'd identity shortcut.)
    assert float(tf.reduce_min(outputs["stage1"])) < 0.0


def test_parameter_count_matches_deeplab2(resnet50):
    trainable = sum(int(np.prod(v.shape)) for v in resnet50.trainable_variables)
    assert trainable == DEEPLAB2_R50_ENCODER_PARAMS
    non_trainable = sum(int(np.prod(v.shape)) for v in resnet50.non_trainable_variables)
    assert non_trainable == R50_NON_TRAINABLE


def test_deterministic_inference(resnet50, images_65, outputs):
    again = resnet50(images_65, training=False)
    for key in outputs:
        np.testing.assert_array_equal(outputs[key], again[key])


def test_drop_path_schedule_matches_deeplab2(resnet50):
    # DeepLab2 BlockGroup with drop_path_beyond_stride=16 and the 'linear'
    # schedule over 4 stages: the first block of stage 4 (input stride 8) has
    # none, then stride 16 -> 1 - 0.2 * 3/4, stride 32 -> 0.8.
    keep = {
        layer.name: layer.keep_prob
        for layer in resnet50.layers
        if isinstance(layer, DropPath)
    }
    expected = {f"stage4_block{i}_drop_path": 0.85 for i in range(2, 7)}
    expected.update(
        {
            "stage5_block1_drop_path": 0.85,
            "stage5_block2_drop_path": 0.8,
            "stage5_block3_drop_path": 0.8,
        }
    )
    assert keep.keys() == expected.keys()
    for name, value in expected.items():
        assert keep[name] == pytest.approx(value)


def test_architecture_at_641():
    calls = []

    def norm_layer(**kwargs):
        calls.append(kwargs["name"])
        return tf_keras.layers.BatchNormalization(epsilon=1e-5, **kwargs)

    model = build_pixel_encoder(
        "kmax_resnet50", input_shape=(641, 641, 3), norm_layer=norm_layer
    )
    # Every BN comes from the norm_layer factory.
    bns = [
        layer
        for layer in model.layers
        if isinstance(layer, tf_keras.layers.BatchNormalization)
    ]
    assert len(bns) == len(calls) == 53
    assert all(bn.epsilon == 1e-5 for bn in bns)
    layers = {layer.name: layer for layer in model.layers}
    # 7x7 stride-2 stem without bias and without max-pool; stride 2 of stage 2
    # in the 3x3 conv; gamma of the last BN of each block starts at 0.
    assert layers["stem"].kernel_size == (7, 7) and layers["stem"].strides == (2, 2)
    assert not layers["stem"].use_bias
    assert not any(
        isinstance(layer, tf_keras.layers.MaxPooling2D) for layer in model.layers
    )
    assert layers["stage2_block1_conv2"].strides == (2, 2)
    assert layers["stage2_block1_conv1"].strides == (1, 1)
    assert all(
        not layer.use_bias
        for layer in model.layers
        if isinstance(layer, tf_keras.layers.Conv2D)
    )
    np.testing.assert_array_equal(layers["stage3_block2_conv3_bn"].gamma, 0.0)
    sizes = [model.output[f"stage{k}"].shape[1] for k in range(1, 6)]
    assert sizes == R50_SIZES_641
    # Conv multiply-adds at 641x641 equal DeepLab2's measured 35.173 G.
    assert _conv_macs(model) / 1e9 == pytest.approx(
        DEEPLAB2_R50_ENCODER_GMACS_641, abs=5e-4
    )


def test_strided_conv_pads_as_deeplab2():
    # DeepLab2 Conv2DSame pads a 3x3 stride-2 conv by (1, 1) whatever the input
    # size, so on 4 pixels its outputs are centred on pixels 0 and 2 (Keras
    # 'same' would pad (0, 1) and centre them on 1 and 3).
    x = tf_keras.Input(shape=(4, 4, 1))
    y = conv2d_same(x, 1, 3, strides=2, name="probe", kernel_initializer="ones")
    probe = tf_keras.Model(x, y)
    impulse = np.zeros([1, 4, 4, 1], np.float32)
    impulse[0, 1, 1, 0] = 1.0
    # Pixel 1 lies in the windows of both outputs (rows -1..1 and 1..3).
    np.testing.assert_array_equal(probe(impulse).numpy()[0, :, :, 0], np.ones([2, 2]))
    # On 5 (= 4k + 1) pixels: 3 outputs, centred on pixels 0, 2, 4.
    x5 = tf_keras.Input(shape=(5, 5, 1))
    probe5 = tf_keras.Model(
        x5, conv2d_same(x5, 1, 3, strides=2, name="p5", kernel_initializer="ones")
    )
    corner = np.zeros([1, 5, 5, 1], np.float32)
    corner[0, 4, 4, 0] = 1.0
    expected = np.zeros([3, 3], np.float32)
    expected[2, 2] = 1.0
    np.testing.assert_array_equal(probe5(corner).numpy()[0, :, :, 0], expected)
