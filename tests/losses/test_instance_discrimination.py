"""Instance discrimination by hand (temperature 0.3)."""

import math

import numpy as np
import tensorflow as tf

from remax_tf.losses.instance_discrimination import mask_average_loss
from remax_tf.losses.instance_discrimination import pixel_contrastive_loss
from remax_tf.losses.sampling import area_sampling_logits
from remax_tf.losses.sampling import gumbel_top_k_indices

# Pixels 0, 1 in mask 0 with the same feature e0; pixel 2 in mask 1 (e1);
# pixel 3 void.
FEATURE = tf.constant([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
MASKS = tf.constant([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])


def test_pixel_contrastive_by_hand():
    loss = pixel_contrastive_loss(FEATURE, MASKS, tf.constant([[0, 1, 2, 3]]))
    # Pixels 0, 1: target (1/2, 1/2, 0, 0), logits (s, s, 0, 0) with s = 1/0.3:
    #   CE = -log(e^s / (2 e^s + 2)) = log(2 + 2 e^-s).
    # Pixel 2: target (0, 0, 1, 0), logits (0, 0, s, s): CE = log(2 + 2 e^-s).
    # Pixel 3 (void): zero target, zero loss, not counted.
    s = 1.0 / 0.3
    expected = math.log(2.0 + 2.0 * math.exp(-s))
    np.testing.assert_allclose(loss.numpy(), [expected], rtol=1e-5)


def test_mask_average_by_hand():
    area = tf.reduce_sum(MASKS, axis=1)
    thing = tf.constant([[1.0, 1.0, 1.0, 0.0]])
    loss = mask_average_loss(FEATURE, MASKS, area, tf.constant([[1.0, 1.0]]), thing)
    # Mask means are e0 and e1: each thing pixel has logits (s, 0) or (0, s).
    s = 1.0 / 0.3
    np.testing.assert_allclose(loss.numpy(), [math.log(1.0 + math.exp(-s))], rtol=1e-5)


def test_sampling_avoids_void_and_caps_k():
    logits = area_sampling_logits(
        tf.constant([[1.0, 4.0, 2.0, 1.0]]), tf.constant([[1.0, 1.0, 1.0, 0.0]]), 1.5
    )
    for _ in range(5):
        indices = gumbel_top_k_indices(logits, 3).numpy()
        assert sorted(indices[0]) == [0, 1, 2]
    assert gumbel_top_k_indices(logits, 4096).shape == (1, 4)
