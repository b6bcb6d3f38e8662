"""remax_tf.model.pixel_encoder.axial_resnet: the Inception stem.

Each layer goes through the ``check_layer`` fixture (tests/model/conftest.py).
"""

from remax_tf.model.pixel_encoder.axial_resnet import InceptionStem

BN = 2  # gamma + beta per channel (trainable)


def test_inception_stem(check_layer, random_tensor):
    params = 27 * 4 + 4 * BN + 36 * 4 + 4 * BN + 36 * 8 + 8 * BN
    check_layer(
        InceptionStem((4, 4, 8)), random_tensor(1, 9, 9, 3), [1, 5, 5, 8], params
    )
