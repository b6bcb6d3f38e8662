"""remax_tf.model.pixel_encoder.axial_resnet: the Inception stem: shapes, parameter counts, config round trips.

Every layer goes through the ``check_layer`` fixture (tests/model/conftest.py):
build and call it, compare the output shape and the trainable-parameter count
with values derived by hand, check that ``get_config`` holds exactly the
constructor arguments, survives JSON, and rebuilds a layer that computes the
same function, then train the rebuilt layer for two SGD steps: every trainable
variable gets a finite, non-zero gradient and the outputs move.
"""

from remax_tf.model.pixel_encoder.axial_resnet import InceptionStem

BN = 2  # gamma + beta per channel (trainable)


def test_inception_stem(check_layer, random_tensor):
    params = 27 * 4 + 4 * BN + 36 * 4 + 4 * BN + 36 * 8 + 8 * BN
    check_layer(
        InceptionStem((4, 4, 8)), random_tensor(1, 9, 9, 3), [1, 5, 5, 8], params
    )
