"""The single-object crops of backbone pre-training (numpy only).

:mod:`remax_tf.training.pretrain_backbone` trains on them; they live apart
from it so that the processes rendering them in parallel (``spawn``) import
numpy and :mod:`remax_tf.data.shapes`, not TensorFlow.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import numpy as np

from remax_tf.data import shapes

# The crop a single object is drawn on: 65 = 2 * 32 + 1, a valid kMaX size.
CROP_SIZE = 65
# Fraction of crops that show stuff alone (labelled with the stuff class), so
# the encoder also learns the stuff textures.
STUFF_ONLY_FRACTION = 0.15


def _render_crops(dataset: str, seed: int, split: str, start: int, stop: int) -> tuple:
    config = shapes.PRESETS[dataset]
    classes = config.classes
    images, labels = [], []
    for index in range(start, stop):
        rng = shapes.image_rng(seed, split, index)
        image, cls = shapes.render_object(rng, config, CROP_SIZE)
        if rng.uniform() < STUFF_ONLY_FRACTION:
            kind = int(rng.choice(classes.stuff_ids))
            yy, xx = np.mgrid[0:CROP_SIZE, 0:CROP_SIZE].astype(np.float32)
            stuff_kind = dict(classes.stuff)[kind]
            texture = shapes._stuff_texture(rng, stuff_kind, CROP_SIZE, yy, xx)
            noise = rng.normal(0.0, config.noise_std, texture.shape)
            image = np.clip(texture + noise, 0, 255).astype(np.uint8)
            cls = kind
        images.append(image)
        labels.append(cls)
    return np.stack(images), np.asarray(labels, np.int32)


def render_crop_set(
    dataset: str, seed: int, split: str, count: int, workers: int = 2
) -> tuple:
    """``count`` crops and labels (class ids), rendered in ``workers``
    processes; a pure function of (dataset, seed, split, count)."""
    if workers <= 1 or count < 512:
        return _render_crops(dataset, seed, split, 0, count)
    bounds = [count * k // workers for k in range(workers + 1)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = list(
            pool.map(
                _render_crops,
                [dataset] * workers,
                [seed] * workers,
                [split] * workers,
                bounds[:-1],
                bounds[1:],
            )
        )
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
