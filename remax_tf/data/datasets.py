"""Dataset descriptors: what a dataset's labels mean, and its kMaX defaults.

The registry maps a dataset key (the ``dataset`` field of ``DatasetOptions``)
to a :class:`DatasetDescriptor`. Built-in entries reproduce DeepLab2's
``data/dataset.py`` (class counts, ignore labels, label divisors, thing ids)
plus ``shapes_panoptic``, the embedded synthetic dataset. Users add their own
dataset without editing this package: ``build_custom_data`` writes a JSON
descriptor, and ``dataset: "/path/to/descriptor.json"`` in a config (or
:func:`register_dataset` in code) makes it known.

The settings DeepLab2 hard-codes by dataset name in ``kmax_deeplab.py``
(mask slots, pixel-decoder output stride, auxiliary semantic decoder, decoder
drop-path) are data here: :class:`KMaXDefaults`, read by the model builder
only when the config leaves the field unset.
"""

from __future__ import annotations

import colorsys
import dataclasses
import importlib.resources
import json
from typing import Dict
from typing import Mapping
from typing import Sequence
from typing import Tuple

# Package data (setup.py package_data): remax_tf/data/metadata/*.json.
_METADATA_PACKAGE = "remax_tf.data"
_METADATA_DIR = "metadata"


@dataclasses.dataclass(frozen=True)
class KMaXDefaults:
    """kMaX settings DeepLab2 derives from the dataset name (kmax_deeplab.py)."""

    num_mask_slots: int = 128
    pixel_decoder_output_stride: int = 4
    use_auxiliary_semantic_decoder: bool = True
    transformer_decoder_drop_path_keep_prob: float = 0.8


# DeepLab2 kmax_deeplab.py: COCO and unknown datasets.
COCO_KMAX_DEFAULTS = KMaXDefaults()
# DeepLab2 kmax_deeplab.py: 'cityscapes' in the dataset name.
CITYSCAPES_KMAX_DEFAULTS = KMaXDefaults(
    num_mask_slots=256,
    pixel_decoder_output_stride=2,
    use_auxiliary_semantic_decoder=False,
    transformer_decoder_drop_path_keep_prob=0.8,
)
# DeepLab2 kmax_deeplab.py: 'ade20k' in the dataset name.
ADE20K_KMAX_DEFAULTS = KMaXDefaults(transformer_decoder_drop_path_keep_prob=1.0)


@dataclasses.dataclass(frozen=True)
class DatasetDescriptor:
    """Everything the package needs to know about a dataset's labels.

    Attributes:
      name: Registry key.
      num_classes: DeepLab2's ``num_classes``: the number of semantic ids,
        counting the ignore id when it lies inside [0, num_classes).
      ignore_label: Semantic id of void pixels.
      panoptic_label_divisor: Panoptic value = semantic * divisor + instance.
      class_has_instances_list: Semantic ids of thing classes.
      class_names: Name per semantic id, index = id (void included if in range).
      class_colors: RGB colour per semantic id, for visualisation.
      original_category_ids: The dataset's own category id per semantic id
        (e.g. COCO's 1..200), for exporting predictions; -1 where none.
      splits_to_sizes: Number of images per split.
      kmax_defaults: kMaX settings used when the config leaves them unset.
    """

    name: str
    num_classes: int
    ignore_label: int
    panoptic_label_divisor: int
    class_has_instances_list: Tuple[int, ...]
    class_names: Tuple[str, ...]
    class_colors: Tuple[Tuple[int, int, int], ...]
    original_category_ids: Tuple[int, ...]
    splits_to_sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    kmax_defaults: KMaXDefaults = COCO_KMAX_DEFAULTS

    @property
    def thing_class_ids(self) -> Tuple[int, ...]:
        return tuple(sorted(self.class_has_instances_list))

    @property
    def stuff_class_ids(self) -> Tuple[int, ...]:
        things = set(self.class_has_instances_list)
        return tuple(
            i
            for i in range(self.num_classes)
            if i != self.ignore_label and i not in things
        )

    @property
    def thing_stuff_class_ids(self) -> Tuple[int, ...]:
        """Semantic ids in the model's class order: things, then stuff."""
        return self.thing_class_ids + self.stuff_class_ids

    @property
    def num_thing_stuff_classes(self) -> int:
        """NC: real classes, void excluded."""
        return len(self.thing_stuff_class_ids)

    @property
    def num_class_head_outputs(self) -> int:
        """Channels of the transformer class head: NC real classes + void."""
        return self.num_thing_stuff_classes + 1


def _descriptor_from_metadata(
    name: str,
    metadata: Mapping,
    *,
    num_classes: int,
    ignore_label: int,
    label_divisor: int,
    splits_to_sizes: Mapping[str, int],
    kmax_defaults: KMaXDefaults,
) -> DatasetDescriptor:
    """Builds a descriptor from a class list [{id, name, isthing, color, ...}]."""
    names = ["void"] * num_classes
    colors = [(0, 0, 0)] * num_classes
    original = [-1] * num_classes
    things = []
    for entry in metadata["classes"]:
        i = int(entry["id"])
        if not 0 <= i < num_classes or i == ignore_label:
            raise ValueError(
                f"dataset {name!r}: class id {i} ({entry.get('name')!r}) must lie in "
                f"[0, {num_classes}) and differ from the ignore label {ignore_label}."
            )
        names[i] = str(entry["name"])
        colors[i] = tuple(int(c) for c in entry.get("color", (0, 0, 0)))
        original[i] = int(entry.get("original_id", i))
        if entry.get("isthing"):
            things.append(i)
    return DatasetDescriptor(
        name=name,
        num_classes=num_classes,
        ignore_label=ignore_label,
        panoptic_label_divisor=label_divisor,
        class_has_instances_list=tuple(sorted(things)),
        class_names=tuple(names),
        class_colors=tuple(colors),
        original_category_ids=tuple(original),
        splits_to_sizes=dict(splits_to_sizes),
        kmax_defaults=kmax_defaults,
    )


def _load_builtin(filename: str) -> Mapping:
    resource = importlib.resources.files(_METADATA_PACKAGE) / _METADATA_DIR / filename
    return json.loads(resource.read_text(encoding="utf-8"))


# Numbers below are DeepLab2's data/dataset.py.
COCO_PANOPTIC = "coco_panoptic"
CITYSCAPES_PANOPTIC = "cityscapes_panoptic"
ADE20K_PANOPTIC = "ade20k_panoptic"
SHAPES_PANOPTIC = "shapes_panoptic"
SHAPES_PANOPTIC_V2 = "shapes_panoptic_v2"

# shapes_panoptic (remax_tf's embedded synthetic dataset, see
# remax_tf/data/shapes.py): four thing and three stuff classes.
SHAPES_CLASSES = (
    # (id, name, isthing, colour used by visualisations)
    (1, "disc", 1, (220, 20, 60)),
    (2, "triangle", 1, (0, 130, 200)),
    (3, "square", 1, (255, 200, 0)),
    (4, "star", 1, (145, 30, 180)),
    (5, "ground", 0, (110, 90, 60)),
    (6, "water", 0, (70, 130, 180)),
    (7, "foliage", 0, (60, 160, 60)),
)
# Small datasets train with few slots; the demo configs set this explicitly.
SHAPES_KMAX_DEFAULTS = KMaXDefaults(num_mask_slots=16)

# shapes_panoptic_v2 (remax_tf/data/shapes.py, shapes.V2): 20 thing classes,
# "<texture> <shape>" for 5 shapes x 4 texture families, then 3 stuff classes.
_V2_SHAPES = ("disc", "triangle", "square", "star", "cross")
_V2_TEXTURES = ("plain", "striped", "dotted", "checkered")
_V2_NAMES = tuple(f"{t} {s}" for s in _V2_SHAPES for t in _V2_TEXTURES)
# Visualisation colour of class k: its class-typical hue (shapes.V2).
_V2_COLOURS = tuple(
    tuple(int(255 * c) for c in colorsys.hsv_to_rgb((k * 0.6180339887) % 1, 0.8, 0.9))
    for k in range(len(_V2_NAMES))
)
SHAPES_V2_CLASSES = tuple(
    (i + 1, name, 1, _V2_COLOURS[i]) for i, name in enumerate(_V2_NAMES)
) + tuple(
    (len(_V2_NAMES) + 1 + k, n, 0, c)
    for k, (_, n, _, c) in enumerate(SHAPES_CLASSES[4:])
)
# Several objects per image and many classes: 64 slots (COCO's 128 for ~7
# objects per image, halved for at most 6 here).
SHAPES_V2_KMAX_DEFAULTS = KMaXDefaults(num_mask_slots=64)


def _shapes_metadata(classes) -> Dict[str, object]:
    return {
        "classes": [
            {"id": i, "name": n, "isthing": t, "color": c, "original_id": i}
            for i, n, t, c in classes
        ]
    }


def _builtin_descriptors() -> Dict[str, DatasetDescriptor]:
    return {
        COCO_PANOPTIC: _descriptor_from_metadata(
            COCO_PANOPTIC,
            _load_builtin("coco_panoptic.json"),
            num_classes=134,
            ignore_label=0,
            label_divisor=256,
            splits_to_sizes={"train": 118287, "val": 5000, "test": 40670},
            kmax_defaults=COCO_KMAX_DEFAULTS,
        ),
        CITYSCAPES_PANOPTIC: _descriptor_from_metadata(
            CITYSCAPES_PANOPTIC,
            _load_builtin("cityscapes_panoptic.json"),
            num_classes=19,
            ignore_label=255,
            label_divisor=1000,
            splits_to_sizes={
                "train_fine": 2975,
                "val_fine": 500,
                "trainval_fine": 3475,
                "test_fine": 1525,
            },
            kmax_defaults=CITYSCAPES_KMAX_DEFAULTS,
        ),
        ADE20K_PANOPTIC: _descriptor_from_metadata(
            ADE20K_PANOPTIC,
            _load_builtin("ade20k_panoptic.json"),
            num_classes=151,
            ignore_label=0,
            label_divisor=1000,
            splits_to_sizes={"train": 20210, "val": 2000},
            kmax_defaults=ADE20K_KMAX_DEFAULTS,
        ),
        SHAPES_PANOPTIC: _descriptor_from_metadata(
            SHAPES_PANOPTIC,
            _shapes_metadata(SHAPES_CLASSES),
            num_classes=8,
            ignore_label=0,
            label_divisor=256,
            splits_to_sizes={"train": 1000, "val": 200},
            kmax_defaults=SHAPES_KMAX_DEFAULTS,
        ),
        SHAPES_PANOPTIC_V2: _descriptor_from_metadata(
            SHAPES_PANOPTIC_V2,
            _shapes_metadata(SHAPES_V2_CLASSES),
            num_classes=len(SHAPES_V2_CLASSES) + 1,
            ignore_label=0,
            label_divisor=256,
            splits_to_sizes={"train": 1000, "val": 200},
            kmax_defaults=SHAPES_V2_KMAX_DEFAULTS,
        ),
    }


_REGISTRY: Dict[str, DatasetDescriptor] = _builtin_descriptors()


def register_dataset(descriptor: DatasetDescriptor, overwrite: bool = False) -> None:
    """Makes ``descriptor`` available under ``descriptor.name``."""
    if descriptor.name in _REGISTRY and not overwrite:
        raise ValueError(
            f"dataset {descriptor.name!r} is already registered; "
            "pass overwrite=True to replace it."
        )
    _REGISTRY[descriptor.name] = descriptor


def known_datasets() -> Sequence[str]:
    return tuple(sorted(_REGISTRY))


def descriptor_to_json(descriptor: DatasetDescriptor) -> dict:
    """A JSON-serialisable form that :func:`load_descriptor_json` reads back."""
    classes = []
    for i in range(descriptor.num_classes):
        if i == descriptor.ignore_label:
            continue
        classes.append(
            {
                "id": i,
                "name": descriptor.class_names[i],
                "isthing": int(i in descriptor.class_has_instances_list),
                "color": list(descriptor.class_colors[i]),
                "original_id": descriptor.original_category_ids[i],
            }
        )
    return {
        "name": descriptor.name,
        "num_classes": descriptor.num_classes,
        "ignore_label": descriptor.ignore_label,
        "panoptic_label_divisor": descriptor.panoptic_label_divisor,
        "splits_to_sizes": dict(descriptor.splits_to_sizes),
        "kmax_defaults": dataclasses.asdict(descriptor.kmax_defaults),
        "classes": classes,
    }


def load_descriptor_json(path: str) -> DatasetDescriptor:
    """Reads a descriptor written by :func:`descriptor_to_json`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read dataset descriptor {path}: {e}") from e
    return descriptor_from_json(data, path)


def descriptor_from_json(data: Mapping, source: str = "<dict>") -> DatasetDescriptor:
    """Builds a descriptor from the dict :func:`descriptor_to_json` returns
    (e.g. embedded in an export's metadata); ``source`` names it in errors."""
    missing = [
        k
        for k in (
            "name",
            "num_classes",
            "ignore_label",
            "panoptic_label_divisor",
            "classes",
        )
        if k not in data
    ]
    if missing:
        raise ValueError(
            f"dataset descriptor {source} lacks the fields {missing}; "
            "write it with remax_tf.data.build_custom_data."
        )
    return _descriptor_from_metadata(
        data["name"],
        data,
        num_classes=int(data["num_classes"]),
        ignore_label=int(data["ignore_label"]),
        label_divisor=int(data["panoptic_label_divisor"]),
        splits_to_sizes=data.get("splits_to_sizes", {}),
        kmax_defaults=KMaXDefaults(**data.get("kmax_defaults", {})),
    )


def get_dataset_descriptor(name_or_path: str) -> DatasetDescriptor:
    """Returns the descriptor of a registered dataset or of a JSON file.

    Raises:
      KeyError: unknown name; the message lists the known ones.
    """
    if name_or_path.endswith(".json"):
        descriptor = load_descriptor_json(name_or_path)
        _REGISTRY.setdefault(descriptor.name, descriptor)
        return descriptor
    if name_or_path not in _REGISTRY:
        raise KeyError(
            f"unknown dataset {name_or_path!r}; known datasets: "
            f"{', '.join(known_datasets())}, or the path of a descriptor .json "
            "written by remax_tf.data.build_custom_data."
        )
    return _REGISTRY[name_or_path]
