"""shapes_panoptic: the embedded synthetic panoptic dataset.

A deterministic, download-free panoptic task for the demo, the tests and the
benchmarks. Each image has

* stuff: one to three of ``ground`` / ``water`` / ``foliage``, as irregular
  regions (the argmax of smooth random fields), each with its own texture;
* things: ``disc`` / ``triangle`` / ``square`` / ``star`` instances whose
  colour is random (so the class is told by shape, not colour), with sizes
  from a few pixels to a third of the image, rotated, with same-class
  instances that touch and occlude each other;
* crowd: sometimes a cluster of tiny same-class things labelled as one crowd
  region (DeepLab2 encoding: thing class with instance id 0);
* void: sometimes an irregular blob labelled with the ignore id;
* photometric noise and shading.

``shapes_panoptic_v2`` (:data:`V2`) is the harder-but-learnable version:
20 thing classes, each a *shape* (disc, triangle, square, star, cross) with
a *texture family* (plain, striped, dotted, checkered) and a class-typical
colour distribution whose hue ranges overlap between classes, as real
objects' appearances do; two to six things per image, touching and occluding
any class. A class is told by shape, texture and colour together, and a
backbone pre-trained on single-object crops (``remax_tf.pretraining``) can
learn it. ``shapes_panoptic`` stays byte-for-byte reproducible by its name.

Labels use the DeepLab2 encoding ``semantic * 256 + instance`` (docs/datasets.md);
classes are in ``remax_tf.data.datasets.SHAPES_CLASSES``. Every image is a pure
function of (seed, split, index), so any subset regenerates identically.

    python -m remax_tf.data.shapes --output_dir /tmp/shapes
"""

from __future__ import annotations

import argparse
from concurrent import futures
import dataclasses
import glob
import io
import json
import multiprocessing
import os
import sys
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np
from PIL import Image

from remax_tf import atomic
from remax_tf import cli
from remax_tf.data import datasets
from remax_tf.data import tfrecord
from remax_tf.json_io import write_json_atomic

DESCRIPTOR_NAME = datasets.SHAPES_PANOPTIC
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}

# Class ids of shapes_panoptic (remax_tf.data.datasets.SHAPES_CLASSES).
VOID = 0
DISC, TRIANGLE, SQUARE, STAR = 1, 2, 3, 4
GROUND, WATER, FOLIAGE = 5, 6, 7
THING_CLASSES = (DISC, TRIANGLE, SQUARE, STAR)
STUFF_CLASSES = (GROUND, WATER, FOLIAGE)

# Outlines (drawn by _shape_mask) and stuff kinds (painted by _stuff_texture).
# shapes_panoptic's class ids double as these kinds; v2 maps its ids to them.
CROSS = 8
SHAPE_KINDS = (DISC, TRIANGLE, SQUARE, STAR, CROSS)
SHAPE_NAMES = {DISC: "disc", TRIANGLE: "triangle", SQUARE: "square", STAR: "star"}
SHAPE_NAMES[CROSS] = "cross"
STUFF_NAMES = {GROUND: "ground", WATER: "water", FOLIAGE: "foliage"}
# Thing texture families of shapes_panoptic_v2.
PLAIN, STRIPED, DOTTED, CHECKERED = "plain", "striped", "dotted", "checkered"
TEXTURES = (PLAIN, STRIPED, DOTTED, CHECKERED)
# Class-typical hues: class k's hue is centred at frac(k * golden ratio)
# (neighbouring centres 0.034-0.056 apart) and spread by +-V2_HUE_SPREAD, so
# that neighbouring classes' colour ranges overlap (colour narrows the class
# down; texture and shape settle it). A wider spread (0.1, ~4 classes per
# hue) left plain kMaX at things PQ 8-14 after 600-1000 steps: not a regime
# where the baseline learns things (docs/benchmarks.md).
_GOLDEN = 0.6180339887
V2_HUE_SPREAD = 0.04


@dataclasses.dataclass(frozen=True)
class ThingClass:
    """A thing class: its label id, outline and (v2) appearance."""

    id: int
    shape: int
    texture: Optional[str] = None  # None: a random colour (shapes_panoptic)
    hue: float = 0.0

    @property
    def name(self) -> str:
        shape = SHAPE_NAMES[self.shape]
        return f"{self.texture} {shape}" if self.texture else shape


@dataclasses.dataclass(frozen=True)
class ClassSet:
    """The classes of one shapes dataset: things, then stuff ``(id, kind)``."""

    dataset: str
    things: Tuple[ThingClass, ...]
    stuff: Tuple[Tuple[int, int], ...]

    @property
    def thing_ids(self) -> Tuple[int, ...]:
        return tuple(t.id for t in self.things)

    @property
    def stuff_ids(self) -> Tuple[int, ...]:
        return tuple(i for i, _ in self.stuff)

    def thing(self, class_id: int) -> ThingClass:
        return next(t for t in self.things if t.id == class_id)

    def metadata(self) -> List[Tuple[int, str, int]]:
        """(id, name, isthing) of every class, in id order."""
        rows = [(t.id, t.name, 1) for t in self.things]
        rows += [(i, STUFF_NAMES[kind], 0) for i, kind in self.stuff]
        return sorted(rows)


V1 = ClassSet(
    datasets.SHAPES_PANOPTIC,
    tuple(ThingClass(c, c) for c in THING_CLASSES),
    tuple((c, c) for c in STUFF_CLASSES),
)


def _v2_classes() -> ClassSet:
    things = []
    for shape in SHAPE_KINDS:
        for texture in TEXTURES:
            index = len(things)
            hue = (index * _GOLDEN) % 1.0
            things.append(ThingClass(index + 1, shape, texture, hue))
    first_stuff = len(things) + 1
    stuff = tuple((first_stuff + k, kind) for k, kind in enumerate(STUFF_CLASSES))
    return ClassSet(datasets.SHAPES_PANOPTIC_V2, tuple(things), stuff)


V2 = _v2_classes()
CLASS_SETS = {V1.dataset: V1, V2.dataset: V2}


@dataclasses.dataclass(frozen=True)
class ShapesConfig:
    """Knobs of the generator (the defaults define shapes_panoptic).

    Attributes:
      size: Image height and width (129 = 32 * 4 + 1, a valid kMaX crop).
      max_things: Upper bound of thing instances per image.
      min_radius: Smallest thing radius, pixels.
      max_radius_fraction: Largest thing radius as a fraction of ``size``.
      touch_probability: Chance that a thing is placed against an earlier
        instance of its own class (v2: of any class), touching / occluding it.
      crowd_probability: Chance that an image holds one crowd cluster.
      void_probability: Chance that an image holds a void blob.
      noise_std: Std of the per-pixel Gaussian noise, in 0..255 units.
      dataset: The class set: ``shapes_panoptic`` or ``shapes_panoptic_v2``.
      min_things: Lower bound of thing instances per image.
    """

    size: int = 129
    max_things: int = 8
    min_radius: float = 4.0
    max_radius_fraction: float = 0.3
    touch_probability: float = 0.35
    crowd_probability: float = 0.2
    void_probability: float = 0.3
    noise_std: float = 8.0
    dataset: str = datasets.SHAPES_PANOPTIC
    min_things: int = 1

    @property
    def classes(self) -> ClassSet:
        try:
            return CLASS_SETS[self.dataset]
        except KeyError:
            raise ValueError(
                f"ShapesConfig.dataset: unknown class set {self.dataset!r}; "
                f"known: {', '.join(CLASS_SETS)}."
            ) from None


# shapes_panoptic_v2 as the demo and the ablation generate it: 2-6 things of
# radius 10 px (5 output pixels at stride 4 across) to a quarter of the
# image, touching any class half the time.
V2_CONFIG = ShapesConfig(
    size=129,
    min_things=2,
    max_things=6,
    min_radius=10.0,
    max_radius_fraction=0.25,
    touch_probability=0.5,
    crowd_probability=0.1,
    void_probability=0.2,
    noise_std=8.0,
    dataset=datasets.SHAPES_PANOPTIC_V2,
)
PRESETS = {datasets.SHAPES_PANOPTIC: ShapesConfig(), V2.dataset: V2_CONFIG}


def _smooth_field(rng: np.random.Generator, size: int, grid: int) -> np.ndarray:
    """A smooth random field: a coarse random grid, bilinearly upsampled."""
    coarse = rng.standard_normal((grid, grid)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _stuff_layout(
    rng: np.random.Generator, size: int, stuff_ids: Sequence[int]
) -> np.ndarray:
    """Assigns every pixel a stuff class: argmax of per-class smooth fields."""
    num = int(rng.integers(1, len(stuff_ids) + 1))
    classes = rng.permutation(np.array(stuff_ids))[:num]
    fields = np.stack(
        [
            _smooth_field(rng, size, int(rng.integers(3, 6)))
            + 0.35 * _smooth_field(rng, size, 9)
            for _ in classes
        ]
    )
    return classes[np.argmax(fields, axis=0)].astype(np.int32)


def _stuff_texture(
    rng: np.random.Generator, kind: int, size: int, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """An HxWx3 float texture characteristic of a stuff kind."""
    jitter = rng.uniform(-25, 25, size=3)
    if kind == GROUND:  # brown, grainy
        base = np.array([125.0, 95.0, 60.0]) + jitter
        pattern = rng.normal(0.0, 18.0, (size, size))
    elif kind == WATER:  # blue, horizontal ripples
        base = np.array([60.0, 110.0, 185.0]) + jitter
        period = rng.uniform(5.0, 11.0)
        phase = rng.uniform(0, 2 * np.pi)
        wobble = 2.0 * np.sin(xx / rng.uniform(6.0, 14.0))
        pattern = 22.0 * np.sin(2 * np.pi * (yy + wobble) / period + phase)
    else:  # foliage: green, blotchy
        base = np.array([60.0, 140.0, 60.0]) + jitter
        pattern = 35.0 * _smooth_field(rng, size, max(4, size // 6))
    return base[None, None, :] + pattern[..., None]


def _shape_mask(
    kind: int,
    cy: float,
    cx: float,
    radius: float,
    angle: float,
    yy: np.ndarray,
    xx: np.ndarray,
) -> np.ndarray:
    """Boolean mask of one outline of kind ``kind`` (:data:`SHAPE_KINDS`)."""
    dy, dx = yy - cy, xx - cx
    if kind == DISC:
        return dy * dy + dx * dx <= radius * radius
    # Rotate into the shape's frame.
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == SQUARE:
        half = radius / np.sqrt(2.0)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == TRIANGLE:
        # Equilateral, circumradius ``radius``: three half-planes.
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3 + np.pi
            inside &= u * np.cos(a) + v * np.sin(a) <= radius / 2
        return inside
    if kind == CROSS:
        # A plus sign: two bars of half-width radius / 3.
        arm, bar = radius * 0.9, radius / 3.0
        au, av = np.abs(u), np.abs(v)
        return ((au <= arm) & (av <= bar)) | ((av <= arm) & (au <= bar))
    # Five-pointed star in polar form: outer radius ``radius``.
    theta = np.arctan2(v, u)
    rho = np.sqrt(u * u + v * v)
    return rho <= radius * (0.62 + 0.38 * np.cos(5 * theta))


def _hsv_colour(hue: float, sat: float, value: float) -> np.ndarray:
    """An RGB colour in 0..255 from hue, saturation and value in 0..1."""
    k = np.array([5.0, 3.0, 1.0])
    rgb = 1 - np.clip(np.minimum(4 - (hue * 6 + k) % 6, (hue * 6 + k) % 6), 0, 1)
    return 255.0 * value * (1 - sat * rgb)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated random colour (any hue: class is told by shape)."""
    hue = rng.uniform(0, 1)
    value, sat = rng.uniform(0.55, 1.0), rng.uniform(0.5, 1.0)
    return _hsv_colour(hue, sat, value)


def _v1_appearance(
    rng: np.random.Generator, cx: float, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """shapes_panoptic: a random colour with faint stripes (class by shape)."""
    shade = _random_colour(rng)
    stripes = 12.0 * np.sin((xx * np.cos(cx) + yy * np.sin(cx)) / rng.uniform(1.5, 4))
    return shade[None, None, :] + stripes[..., None]


def _v2_appearance(
    rng: np.random.Generator, thing: ThingClass, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """shapes_panoptic_v2: the class's texture family in a colour drawn from
    its hue range; the pattern's second colour is a darker shade of it."""
    hue = (thing.hue + rng.uniform(-V2_HUE_SPREAD, V2_HUE_SPREAD)) % 1.0
    # Saturated enough that the hue is visible.
    base = _hsv_colour(hue, rng.uniform(0.65, 1.0), rng.uniform(0.6, 1.0))
    dark = base * rng.uniform(0.35, 0.6)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    if thing.texture == STRIPED:
        period = rng.uniform(4.0, 7.0)
        mix = (np.sin(2 * np.pi * u / period) > 0).astype(np.float32)
    elif thing.texture == DOTTED:
        period = rng.uniform(5.0, 8.0)
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        mix = (du * du + dv * dv < 0.09).astype(np.float32)
    elif thing.texture == CHECKERED:
        cell = rng.uniform(2.5, 4.0)
        mix = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    else:  # plain: a soft gradient only
        mix = 0.25 * (1 + np.sin(u / rng.uniform(10.0, 20.0)))
    return (
        base[None, None, :] * (1 - mix[..., None])
        + dark[None, None, :] * mix[..., None]
    )


def render(  # noqa: PLR0915 (long orchestration, to split)
    rng: np.random.Generator, config: ShapesConfig = ShapesConfig()
) -> Tuple[np.ndarray, np.ndarray]:
    """Renders one image and its panoptic label.

    Returns:
      image: [S, S, 3] uint8.
      panoptic: [S, S] int32, ``semantic * 256 + instance``; instance ids start
        at 1 per class for non-crowd things; crowd = thing class, instance 0.
    """
    size = config.size
    classes = config.classes
    v2 = classes is not V1
    thing_ids = classes.thing_ids
    divisor = datasets.get_dataset_descriptor(classes.dataset).panoptic_label_divisor
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    semantic = _stuff_layout(rng, size, classes.stuff_ids)
    instance = np.zeros((size, size), np.int32)
    image = np.zeros((size, size, 3), np.float32)
    stuff_kind = dict(classes.stuff)
    for cls in np.unique(semantic):
        region = semantic == cls
        texture = _stuff_texture(rng, stuff_kind[int(cls)], size, yy, xx)
        image[region] = texture[region]

    # Things, drawn in order: later ones occlude earlier ones.
    placed: List[Tuple[int, float, float, float]] = []  # class, cy, cx, radius
    next_id = {c: 1 for c in thing_ids}
    num_things = int(rng.integers(config.min_things, config.max_things + 1))
    max_radius = config.max_radius_fraction * size
    for _ in range(num_things):
        cls = int(rng.choice(thing_ids))
        thing = classes.thing(cls)
        radius = float(
            np.exp(rng.uniform(np.log(config.min_radius), np.log(max_radius)))
        )
        near = placed if v2 else [p for p in placed if p[0] == cls]
        if near and rng.uniform() < config.touch_probability:
            _, py, px, pr = near[int(rng.integers(len(near)))]
            direction = rng.uniform(0, 2 * np.pi)
            dist = (pr + radius) * rng.uniform(0.55, 0.95)
            cy, cx = py + dist * np.sin(direction), px + dist * np.cos(direction)
        elif v2:  # centres inside the image: few things are mostly cut off
            cy, cx = rng.uniform(0.1 * size, 0.9 * size, size=2)
        else:
            cy, cx = rng.uniform(0, size), rng.uniform(0, size)
        angle = rng.uniform(0, 2 * np.pi)
        mask = _shape_mask(thing.shape, cy, cx, radius, angle, yy, xx)
        if mask.sum() < 4:
            continue
        semantic[mask] = cls
        instance[mask] = next_id[cls]
        next_id[cls] += 1
        if v2:
            appearance = _v2_appearance(rng, thing, yy, xx)
        else:
            appearance = _v1_appearance(rng, cx, yy, xx)
        image[mask] = appearance[mask]
        placed.append((cls, cy, cx, radius))

    if rng.uniform() < config.crowd_probability:
        # A crowd: many tiny instances of one class, labelled as one region.
        cls = int(rng.choice(thing_ids))
        thing = classes.thing(cls)
        cy, cx = rng.uniform(0.2 * size, 0.8 * size, size=2)
        crowd = np.zeros((size, size), bool)
        for _ in range(int(rng.integers(6, 13))):
            oy, ox = rng.normal(0, 0.08 * size, size=2)
            r = rng.uniform(2.0, 4.0)
            m = _shape_mask(
                thing.shape, cy + oy, cx + ox, r, rng.uniform(0, 6.3), yy, xx
            )
            image[m] = _random_colour(rng)[None, :]
            crowd |= m
        semantic[crowd] = cls
        instance[crowd] = 0

    if rng.uniform() < config.void_probability:
        blob = _smooth_field(rng, size, 5)
        void = blob > np.quantile(blob, rng.uniform(0.9, 0.97))
        semantic[void] = VOID
        instance[void] = 0
        image[void] = rng.uniform(0, 255, size=3)[None, :] * 0.3

    # Instance ids must be 1..n per class after occlusion removed some.
    for cls in thing_ids:
        ids = np.unique(instance[(semantic == cls) & (instance > 0)])
        remap = np.zeros(max(next_id[cls], 1) + 1, np.int32)
        remap[ids] = np.arange(1, len(ids) + 1)
        sel = semantic == cls
        instance[sel] = remap[instance[sel]]

    shading = 1.0 + 0.25 * _smooth_field(rng, size, 3)
    image = image * shading[..., None] + rng.normal(0.0, config.noise_std, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    panoptic = semantic * divisor + instance
    return image, panoptic.astype(np.int32)


def render_object(
    rng: np.random.Generator, config: ShapesConfig, size: int
) -> Tuple[np.ndarray, int]:
    """One centred thing on stuff: a ``[size, size, 3]`` uint8 crop and its
    class id, for backbone pre-training (``remax_tf.pretraining``)."""
    classes = config.classes
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = int(rng.choice(classes.stuff_ids))
    image = _stuff_texture(rng, dict(classes.stuff)[kind], size, yy, xx)
    cls = int(rng.choice(classes.thing_ids))
    thing = classes.thing(cls)
    radius = size * rng.uniform(0.2, 0.45)
    cy, cx = size / 2 + rng.normal(0, size * 0.08, size=2)
    mask = _shape_mask(thing.shape, cy, cx, radius, rng.uniform(0, 2 * np.pi), yy, xx)
    if classes is V1:
        appearance = _v1_appearance(rng, cx, yy, xx)
    else:
        appearance = _v2_appearance(rng, thing, yy, xx)
    image[mask] = appearance[mask]
    shading = 1.0 + 0.25 * _smooth_field(rng, size, 3)
    image = image * shading[..., None] + rng.normal(0.0, config.noise_std, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), cls


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: a pure function of (seed, split, index)."""
    return np.random.default_rng([seed, _SPLIT_IDS[split], index])


def _encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _render_shard(
    args: Tuple[str, int, int, int, ShapesConfig],
) -> List[Tuple[str, bytes, np.ndarray]]:
    split, seed, start, stop, config = args
    out = []
    for index in range(start, stop):
        image, panoptic = render(image_rng(seed, split, index), config)
        out.append((f"{split}_{index:06d}", _encode_png(image), panoptic))
    return out


GENERATION_FILE = "generation.json"


def read_generation(output_dir: str) -> Optional[Dict[str, object]]:
    """The request recorded by ``generate`` in ``output_dir`` (None: none)."""
    try:
        with open(os.path.join(output_dir, GENERATION_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def generate(
    output_dir: str,
    num_train: int = 1000,
    num_val: int = 200,
    seed: int = 0,
    config: ShapesConfig = ShapesConfig(),
    images_per_shard: int = 250,
    num_workers: Optional[int] = None,
) -> Dict[str, List[str]]:
    """Writes train/val TFRecord shards (DeepLab2 format) to ``output_dir``.

    ``generation.json`` records the request before any shard is written. When
    it matches, shards already present are kept (generation is deterministic
    and shard writes are atomic), so an interrupted run resumes; otherwise the
    train/val shards in ``output_dir`` are deleted first, so that a
    ``train-*.tfrecord`` pattern never mixes two generations. Returns the shard
    paths per split.
    """

    os.makedirs(output_dir, exist_ok=True)
    request = {
        "dataset": config.dataset,
        "seed": seed,
        "num_train": num_train,
        "num_val": num_val,
        "images_per_shard": images_per_shard,
        "config": dataclasses.asdict(config),
    }
    marker = os.path.join(output_dir, GENERATION_FILE)
    if read_generation(output_dir) != request:
        for split in ("train", "val"):
            for stale in glob.glob(
                os.path.join(output_dir, f"{split}-*-of-*.tfrecord")
            ):
                os.remove(stale)
        write_json_atomic(marker, request, indent=1)
    jobs, paths = [], {}
    for split, count in (("train", num_train), ("val", num_val)):
        if count <= 0:
            continue
        num_shards = max(1, -(-count // images_per_shard))
        paths[split] = tfrecord.shard_paths(output_dir, split, num_shards)
        for shard, path in enumerate(paths[split]):
            start = shard * count // num_shards
            stop = (shard + 1) * count // num_shards
            if not os.path.exists(path):
                jobs.append((path, (split, seed, start, stop, config)))
    workers = num_workers or min(len(jobs), os.cpu_count() or 1) or 1

    def write(path: str, rendered) -> None:
        size = config.size
        tfrecord.write_shard(
            path,
            (
                tfrecord.make_example(png, "png", name, size, size, label)
                for name, png, label in rendered
            ),
        )

    if workers <= 1:
        for path, args in jobs:
            write(path, _render_shard(args))
    else:
        context = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            pending = {pool.submit(_render_shard, args): path for path, args in jobs}
            for done in futures.as_completed(pending):
                write(pending[done], done.result())
    return paths


def label_statistics(
    panoptic_maps: Sequence[np.ndarray], dataset: str = DESCRIPTOR_NAME
) -> Dict[str, object]:
    """Counts of what the labels hold: per-class pixels and instances, crowd
    and void fractions, instances per image and instance sizes."""
    thing_ids = CLASS_SETS[dataset].thing_ids
    descriptor = datasets.get_dataset_descriptor(dataset)
    divisor = descriptor.panoptic_label_divisor
    pixels = np.zeros(descriptor.num_classes, np.int64)
    instances = np.zeros(descriptor.num_classes, np.int64)
    areas, per_image, crowd_images = [], [], 0
    total = 0
    for panoptic in panoptic_maps:
        semantic, inst = panoptic // divisor, panoptic % divisor
        total += panoptic.size
        pixels += np.bincount(semantic.ravel(), minlength=descriptor.num_classes)
        count = 0
        for cls in thing_ids:
            ids, sizes = np.unique(
                inst[(semantic == cls) & (inst > 0)], return_counts=True
            )
            instances[cls] += len(ids)
            count += len(ids)
            areas.extend(sizes.tolist())
            crowd_images += int(np.any((semantic == cls) & (inst == 0)))
        per_image.append(count)
    names = descriptor.class_names
    return {
        "images": len(per_image),
        "pixel_fraction": {
            names[i]: round(float(pixels[i]) / max(total, 1), 4)
            for i in range(len(names))
        },
        "instances": {names[c]: int(instances[c]) for c in thing_ids},
        "instances_per_image": {
            "mean": float(np.mean(per_image)) if per_image else 0.0,
            "max": int(max(per_image, default=0)),
        },
        "instance_area_px": {
            "min": int(min(areas, default=0)),
            "median": float(np.median(areas)) if areas else 0.0,
            "max": int(max(areas, default=0)),
        },
        "images_with_crowd": crowd_images,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_train", type=int, default=1000)
    parser.add_argument("--num_val", type=int, default=200)
    parser.add_argument(
        "--dataset",
        default=DESCRIPTOR_NAME,
        choices=sorted(PRESETS),
        help="which dataset (its preset ShapesConfig) to generate",
    )
    parser.add_argument(
        "--size", type=int, default=None, help="image size (default: the preset's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    return cli.run_parsed(_generate, args)


def _generate(args: argparse.Namespace) -> int:
    """``main`` after parsing: expected failures raise RemaxError."""
    atomic.check_output_dir(args.output_dir)
    config = PRESETS[args.dataset]
    if args.size:
        config = dataclasses.replace(config, size=args.size)
    start = time.time()
    paths = generate(args.output_dir, args.num_train, args.num_val, args.seed, config)
    elapsed = time.time() - start

    for split, shard_list in paths.items():
        labels = [
            r["label"]
            for r in tfrecord.read_examples(
                os.path.join(args.output_dir, f"{split}-*.tfrecord")
            )
        ]
        stats = label_statistics(labels, config.dataset)
        print(f"{split}: {len(shard_list)} shard(s) in {args.output_dir}")
        print(json.dumps(stats, indent=1))
    print(f"generated in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
