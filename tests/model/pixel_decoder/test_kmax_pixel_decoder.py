"""remax_tf.model.pixel_decoder: the kMaX pixel decoder.

Each layer goes through the ``check_layer`` fixture (tests/model/conftest.py).
"""

import pytest

from remax_tf.model.pixel_decoder.kmax_pixel_decoder import KMaXPixelDecoder


def test_kmax_pixel_decoder_tiny(check_layer, random_tensor, parameter_count):
    endpoints = {
        "stage1": random_tensor(1, 33, 33, 4),
        "stage2": random_tensor(1, 17, 17, 8),
        "stage3": random_tensor(1, 9, 9, 12),
        "stage4": random_tensor(1, 5, 5, 16),
        "stage5": random_tensor(1, 3, 3, 24),
    }
    decoder = KMaXPixelDecoder(
        (8, 8, 4, 2, 2),
        (1, 1, 1, 1, 1),
        ("axial", "axial", "bottleneck", "bottleneck", "bottleneck"),
    )
    outputs = decoder(endpoints, training=False)
    assert [o.shape.as_list() for o in outputs] == [
        [1, 3, 3, 32],
        [1, 5, 5, 32],
        [1, 9, 9, 16],
        [1, 17, 17, 8],
        [1, 33, 33, 8],
    ]
    assert decoder.output_strides == [32, 16, 8, 4, 2]
    # DeepLab2 dilates the decoder's 3x3 convolutions by 2.
    assert decoder._stages[2]._blocks[0]._conv2_bn_act.atrous_rate == 2
    check_layer(decoder, endpoints, [1, 3, 3, 32], parameter_count(decoder))
    with pytest.raises(KeyError, match="stage1"):
        decoder({k: v for k, v in endpoints.items() if k != "stage1"})
