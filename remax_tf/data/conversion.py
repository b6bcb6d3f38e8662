"""Shared machinery of the dataset converters (``build_*_data``).

A converter lists :class:`ImageItem` s (image file, panoptic PNG, its JSON
segments) and a :class:`LabelSpec` (how the dataset's category ids map to
semantic ids); :func:`convert_split` does the rest, identically for every
dataset:

* label generation: COCO-panoptic PNG (``id = R + 256 G + 256^2 B``) plus
  ``segments_info`` -> ``semantic * label_divisor + instance`` with the
  checks of :mod:`remax_tf.data.panoptic_labels` (DeepLab2's
  ``data/build_coco_data.py``; ``LabelSpec``, ``ConversionError`` and
  ``panoptic_label_from_segments`` are defined there and read here);
* checks that name the file: corrupt image, image/label size mismatch, and
  those of the labels (unknown category id, a PNG segment id absent from the
  JSON, instance id >= label divisor, declared segment area != PNG area,
  crowd on a stuff class);
* sharding ``{split}-%05d-of-%05d.tfrecord``, each shard written under a
  temporary name and renamed (``tfrecord.write_shard``), so a re-run skips the
  complete shards and never trusts a half-written one;
* ``on_error``: "fail" stops at the first bad image, "skip" leaves it out,
  counts it and lists it in ``{split}-skipped.txt``;
* a progress bar on stderr and an optional process pool over shards;
* the command line (:func:`run_cli`, :func:`run_app`): ``--output_dir`` is
  checked before any work; an expected failure prints one ``error: ...``
  line and exits with status 1 (``--debug`` or ``REMAX_TF_DEBUG=1``: with
  its traceback).

The behaviour mirrors DeepLab2's ``data/build_{coco,cityscapes,ade20k}_data.py``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import json
import multiprocessing
import os
import sys
from typing import Any
from typing import Callable
from typing import Dict
from typing import Iterator
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

from absl import flags
import numpy as np
from PIL import Image
import tensorflow as tf

from remax_tf import atomic
from remax_tf import cli
from remax_tf.data import tfrecord
from remax_tf.data.panoptic_ids import rgb_to_id
from remax_tf.data.panoptic_labels import ConversionError
from remax_tf.data.panoptic_labels import LabelSpec
from remax_tf.data.panoptic_labels import panoptic_label_from_segments

try:  # Optional: without tqdm, progress is a line every _PROGRESS_EVERY images.
    from tqdm import tqdm
except ImportError:
    tqdm = None

ON_ERROR_CHOICES = ("fail", "skip")
# Progress lines printed when tqdm is unavailable: one every this many images.
_PROGRESS_EVERY = 100
# Skipped images listed in the console summary (all of them go to the file).
_SUMMARY_LIST_LIMIT = 20
# Quality used when an image must be re-encoded as JPEG (non-RGB source).
_JPEG_QUALITY = 95


@dataclasses.dataclass(frozen=True)
class ImageItem:
    """One image to convert.

    Attributes:
      name: Image name without extension (``image/filename``).
      image_path: The encoded image.
      label_path: Its panoptic PNG; None for unlabeled splits.
      segments: The JSON ``segments_info`` of the PNG.
      problem: Set when the item cannot be converted (e.g. no annotation);
        reported like any other bad-data error.
    """

    name: str
    image_path: str
    label_path: Optional[str] = None
    segments: Optional[Tuple[Mapping, ...]] = None
    problem: Optional[str] = None


@dataclasses.dataclass
class SplitSummary:
    """What :func:`convert_split` did."""

    split: str
    num_images: int = 0
    written: int = 0
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    shards_written: int = 0
    shards_reused: int = 0
    shard_paths: List[str] = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"split {self.split!r}: {self.num_images} images, {self.written} "
            f"written, {len(self.skipped)} skipped; shards: {self.shards_written} "
            f"written, {self.shards_reused} already complete (kept)."
        ]
        lines += cli.skipped_lines(
            self.skipped, "  ", _SUMMARY_LIST_LIMIT, f"{self.split}-skipped.txt"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command-line flags shared by the build_*_data modules.


def define_converter_flags() -> None:
    """Defines the flags every converter takes (once per process)."""
    if "output_dir" in flags.FLAGS:
        return
    flags.DEFINE_string(
        "output_dir", None, "Directory of the TFRecord shards (created if missing)."
    )
    flags.DEFINE_list(
        "splits", None, "Splits to convert, e.g. 'val,train' (default: all)."
    )
    flags.DEFINE_integer(
        "num_shards",
        None,
        "Shards per split (default: DeepLab2's count for the dataset; never more "
        "than the number of images).",
    )
    flags.DEFINE_enum(
        "on_error",
        "fail",
        list(ON_ERROR_CHOICES),
        "'fail': stop at the first bad image; 'skip': leave bad images out, "
        "count them and list them in {split}-skipped.txt.",
    )
    flags.DEFINE_boolean(
        "treat_crowd_as_ignore",
        True,
        "Crowd pixels become the ignore label (DeepLab2's default). With "
        "--notreat_crowd_as_ignore they keep their class with instance id 0.",
    )
    flags.DEFINE_integer("num_workers", 1, "Processes converting shards in parallel.")
    flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.")


def resolve_splits(
    requested: Optional[Sequence[str]], known: Sequence[str]
) -> List[str]:
    """The splits to convert; an unknown name raises listing the known ones."""
    splits = list(requested) if requested else list(known)
    unknown = [s for s in splits if s not in known]
    if unknown:
        raise ConversionError(
            f"--splits: unknown split(s) {unknown}; this converter knows "
            f"{list(known)}. Fix: pass --splits with some of them."
        )
    return splits


# ---------------------------------------------------------------------------
# Panoptic JSON.


class PanopticAnnotations:
    """The ``annotations`` of a COCO-panoptic JSON, looked up by image name.

    An image named ``N`` (file name without extension) matches the annotation
    whose PNG file is ``N.png`` (COCO, ADE20K), whose ``image_id`` is ``N``
    (Cityscapes), or whose ``image_id`` is that of the ``images`` entry with
    file name ``N.*`` (any COCO-format JSON).
    """

    def __init__(self, json_path: str):
        self.path = json_path
        try:
            with tf.io.gfile.GFile(json_path) as f:
                data = json.load(f)
        except (OSError, tf.errors.OpError) as e:
            raise ConversionError(f"cannot read panoptic JSON {json_path}: {e}") from e
        except json.JSONDecodeError as e:
            raise ConversionError(f"{json_path} is not valid JSON: {e}") from e
        if "annotations" not in data:
            raise ConversionError(
                f"{json_path} has no 'annotations' list; expected a COCO-panoptic "
                "JSON ({'annotations': [{'image_id', 'file_name', "
                "'segments_info'}], 'categories': [...]})."
            )
        self.categories: List[Mapping] = list(data.get("categories", []))
        self.annotations: List[Mapping] = list(data["annotations"])
        self._by_key: Dict[str, Mapping] = {}
        seen_ids = set()
        for annotation in self.annotations:
            for field in ("image_id", "file_name", "segments_info"):
                if field not in annotation:
                    raise ConversionError(
                        f"{json_path}: an annotation lacks {field!r}: "
                        f"{_short(annotation)}"
                    )
            image_id = annotation["image_id"]
            if image_id in seen_ids:
                raise ConversionError(
                    f"{json_path}: image_id {image_id!r} has two annotations."
                )
            seen_ids.add(image_id)
            prefix = os.path.splitext(annotation["file_name"])[0]
            self._by_key.setdefault(prefix, annotation)
            self._by_key.setdefault(str(image_id), annotation)
        by_id = {str(a["image_id"]): a for a in self.annotations}
        for image in data.get("images", []):
            if "file_name" in image and str(image.get("id")) in by_id:
                prefix = os.path.splitext(os.path.basename(image["file_name"]))[0]
                self._by_key.setdefault(prefix, by_id[str(image["id"])])
        self.image_files: Dict[str, str] = {
            str(image["id"]): image["file_name"]
            for image in data.get("images", [])
            if "id" in image and "file_name" in image
        }

    def lookup(self, image_name: str) -> Optional[Mapping]:
        return self._by_key.get(image_name)


def _short(value, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def items_for_images(
    image_paths: Sequence[str],
    names: Sequence[str],
    annotations: Optional[PanopticAnnotations],
    label_dir: Optional[str],
) -> List[ImageItem]:
    """Pairs images with their annotation; unlabeled when ``annotations`` is None."""
    items = []
    for path, name in zip(image_paths, names):
        if annotations is None:
            items.append(ImageItem(name=name, image_path=path))
            continue
        annotation = annotations.lookup(name)
        if annotation is None:
            items.append(
                ImageItem(
                    name=name,
                    image_path=path,
                    problem=(
                        f"image {path} has no annotation in {annotations.path} "
                        f"(looked for file_name {name}.png or image_id {name!r})."
                    ),
                )
            )
            continue
        items.append(
            ImageItem(
                name=name,
                image_path=path,
                label_path=os.path.join(label_dir, annotation["file_name"]),
                segments=tuple(annotation["segments_info"]),
            )
        )
    return items


def find_images(patterns: Sequence[str], split: str, none_found: str) -> List[str]:
    """The sorted images of the first glob in ``patterns`` that matches any.

    A match of a later (fall-back) pattern is announced on stderr; when none
    matches, :class:`ConversionError` with the message ``none_found``.
    """
    for pattern in patterns:
        paths = sorted(tf.io.gfile.glob(pattern))
        if paths:
            if pattern != patterns[0]:
                print(
                    f"split {split!r}: reading images from {pattern}", file=sys.stderr
                )
            return paths
    raise ConversionError(none_found)


def split_items(
    image_paths: Sequence[str],
    panoptic_json: Optional[str] = None,
    label_dir: Optional[str] = None,
    name_suffix: Optional[str] = None,
) -> List[ImageItem]:
    """The items of one split: each image with its annotation in
    ``panoptic_json`` and its PNG in ``label_dir``; no ``panoptic_json``: an
    unlabeled split. An image's name is its file name without ``name_suffix``
    (default: without its extension)."""
    names = [
        os.path.basename(p)[: -len(name_suffix)]
        if name_suffix
        else os.path.splitext(os.path.basename(p))[0]
        for p in image_paths
    ]
    if panoptic_json is None:
        return items_for_images(image_paths, names, None, None)
    annotations = PanopticAnnotations(panoptic_json)
    return items_for_images(image_paths, names, annotations, label_dir)


# ---------------------------------------------------------------------------
# Reading one image and one label.


def _read_bytes(path: str) -> bytes:
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except (OSError, tf.errors.OpError) as e:
        raise ConversionError(f"cannot read {path}: {e}") from e


def _decode_pil(data: bytes, path: str, what: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # Decodes fully, so truncated files fail here.
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise ConversionError(
            f"corrupt {what} {path}: {type(e).__name__}: {e}. Fix: re-download or "
            "re-export the file, or pass --on_error=skip to leave it out."
        ) from e
    return image


def encode_image(path: str) -> Tuple[bytes, str, int, int]:
    """Reads an image and returns (bytes, "jpeg"|"png", height, width).

    Non-RGB images (grayscale, CMYK, RGBA, palette) are converted to RGB and
    re-encoded, as DeepLab2's ``data_utils.create_features`` does. Pixels keep
    their stored orientation (EXIF is not applied), which is also what
    ``tf.io.decode_image`` sees when training.
    """
    data = _read_bytes(path)
    image = _decode_pil(data, path, "image")
    source_format = (image.format or "").upper()
    if image.mode == "RGB" and source_format in ("JPEG", "PNG"):
        return data, source_format.lower(), image.height, image.width
    rgb = image.convert("RGB")
    buffer = io.BytesIO()
    if source_format == "JPEG":
        rgb.save(buffer, format="JPEG", quality=_JPEG_QUALITY)
        image_format = "jpeg"
    else:
        rgb.save(buffer, format="PNG")
        image_format = "png"
    return buffer.getvalue(), image_format, rgb.height, rgb.width


def read_segment_ids(png_path: str) -> np.ndarray:
    """Decodes a COCO-panoptic PNG into [H, W] int64 segment ids."""
    image = _decode_pil(_read_bytes(png_path), png_path, "panoptic PNG")
    if image.mode != "RGB":
        raise ConversionError(
            f"panoptic PNG {png_path} has mode {image.mode}; expected RGB with "
            "id = R + 256 G + 256^2 B (COCO panoptic format)."
        )
    return rgb_to_id(np.asarray(image)).astype(np.int64)


def build_example(item: ImageItem, spec: LabelSpec):
    """Reads, checks and converts one item into a ``tf.train.Example``."""
    if item.problem:
        raise ConversionError(item.problem)
    image_bytes, image_format, height, width = encode_image(item.image_path)
    label = None
    if item.label_path is not None:
        segment_ids = read_segment_ids(item.label_path)
        if segment_ids.shape != (height, width):
            raise ConversionError(
                f"image {item.image_path} is {height}x{width} but its label "
                f"{item.label_path} is {segment_ids.shape[0]}x{segment_ids.shape[1]}"
                " (height x width); they must match."
            )
        label = panoptic_label_from_segments(
            segment_ids, item.segments or (), spec, item.label_path
        )
    return tfrecord.make_example(
        image_bytes, image_format, item.name, height, width, label
    )


# ---------------------------------------------------------------------------
# Sharded, resumable writing.


@dataclasses.dataclass(frozen=True)
class _ShardJob:
    path: str
    items: Tuple[ImageItem, ...]
    spec: LabelSpec
    on_error: str


def _examples(job: _ShardJob, skipped: List[Tuple[str, str]], tick) -> Iterator:
    for item in job.items:
        try:
            example = build_example(item, job.spec)
        except ConversionError as e:
            if job.on_error == "fail":
                raise
            skipped.append((item.name, str(e)))
            example = None
        except Exception as e:  # Unexpected failure: name the image.
            message = f"{item.image_path}: {type(e).__name__}: {e}"
            if job.on_error == "fail":
                raise ConversionError(message) from e
            skipped.append((item.name, message))
            example = None
        tick(1)
        if example is not None:
            yield example


def _write_shard_job(job: _ShardJob, tick=lambda n: None):
    skipped: List[Tuple[str, str]] = []
    written = tfrecord.write_shard(job.path, _examples(job, skipped, tick))
    return written, skipped


class _Progress:
    """tqdm on stderr when available, else a line every _PROGRESS_EVERY images."""

    def __init__(self, total: int, description: str, enabled: bool):
        self._bar = None
        self._count = 0
        self._total = total
        self._description = description
        self._enabled = enabled
        if enabled and tqdm is not None:
            self._bar = tqdm(total=total, desc=description, unit="img", file=sys.stderr)

    def __call__(self, n: int) -> None:
        self._count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled and (
            self._count % _PROGRESS_EVERY < n or self._count == self._total
        ):
            print(
                f"{self._description}: {self._count}/{self._total}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def convert_split(
    items: Sequence[ImageItem],
    spec: LabelSpec,
    output_dir: str,
    split: str,
    num_shards: int,
    on_error: str = "fail",
    num_workers: int = 1,
    progress: bool = True,
) -> SplitSummary:
    """Writes ``items`` as ``{split}-%05d-of-%05d.tfrecord`` shards.

    Complete shards already in ``output_dir`` are kept, so an interrupted run
    resumes where it stopped (shard contents are a function of the sorted
    item list and ``num_shards``).

    Raises:
      ConversionError: bad data with ``on_error="fail"``.
    """

    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(
            f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}."
        )
    if not items:
        raise ConversionError(
            f"split {split!r}: no images found; check the dataset root and layout."
        )
    atomic.check_output_dir(output_dir)
    tf.io.gfile.makedirs(output_dir)
    count = len(items)
    num_shards = max(1, min(int(num_shards), count))
    paths = tfrecord.shard_paths(output_dir, split, num_shards)
    _warn_stale_shards(output_dir, split, paths)
    summary = SplitSummary(split=split, num_images=count, shard_paths=paths)
    jobs = []
    for index, path in enumerate(paths):
        chunk = tuple(
            items[index * count // num_shards : (index + 1) * count // num_shards]
        )
        if tf.io.gfile.exists(path):
            summary.shards_reused += 1
            continue
        jobs.append(_ShardJob(path, chunk, spec, on_error))
    bar = _Progress(
        sum(len(job.items) for job in jobs), f"{spec.dataset} {split}", progress
    )
    try:
        if num_workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                written, skipped = _write_shard_job(job, bar)
                summary.written += written
                summary.skipped.extend(skipped)
                summary.shards_written += 1
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                num_workers, mp_context=context
            ) as pool:
                pending = {pool.submit(_write_shard_job, job): job for job in jobs}
                for done in concurrent.futures.as_completed(pending):
                    written, skipped = done.result()
                    summary.written += written
                    summary.skipped.extend(skipped)
                    summary.shards_written += 1
                    bar(len(pending[done].items))
    finally:
        bar.close()
    if summary.skipped:
        with tf.io.gfile.GFile(
            os.path.join(output_dir, f"{split}-skipped.txt"), "w"
        ) as f:
            for name, reason in summary.skipped:
                f.write(f"{name}\t{reason}\n")
    return summary


def _warn_stale_shards(output_dir: str, split: str, paths: Sequence[str]) -> None:
    """Warns about shards of the same split written with another shard count."""
    existing = tf.io.gfile.glob(os.path.join(output_dir, f"{split}-*-of-*.tfrecord"))
    stale = sorted(set(existing) - set(paths))
    if stale:
        print(
            f"warning: {len(stale)} shard(s) of split {split!r} in {output_dir} "
            f"come from a run with another --num_shards (e.g. {stale[0]}); a "
            f"file_pattern like {split}*.tfrecord would read both. Delete them.",
            file=sys.stderr,
        )


def run_cli(convert_fn, *args, **kwargs):
    """Runs a converter from its absl main; returns what ``convert_fn`` returns.

    ``--output_dir`` is checked first (a regular file in the way, a folder
    that is not writable). An expected failure (bad data, an unusable
    output folder: :class:`~remax_tf.errors.RemaxError`) ends the process
    with one ``error: ...`` line and exit status 1; ``--debug`` (see
    :func:`run_app`) or ``REMAX_TF_DEBUG=1`` also prints its traceback.
    """
    result = []

    def convert() -> None:
        atomic.check_output_dir(flags.FLAGS.output_dir)
        result.append(convert_fn(*args, **kwargs))

    status = cli.report_errors(convert)
    if status:
        sys.exit(status)
    return result[0]


def run_app(main) -> None:
    """``cli.run_absl_app(main)`` for a converter. ``--debug`` is not an absl
    flag (the trainer defines one of that name, and both may be imported in
    one process): it is taken out of the arguments and passed on as
    ``REMAX_TF_DEBUG=1``, which :func:`run_cli` reads."""
    if cli.DEBUG_FLAG in sys.argv[1:]:
        os.environ[cli.DEBUG_ENV] = "1"
        sys.argv = cli.strip_debug_flag(sys.argv)
    cli.run_absl_app(main)


# The shared converter flags a dataset converter's ``convert`` takes after its
# root folder and ``--output_dir``, in this order (define_converter_flags).
_SHARED_CONVERT_FLAGS = (
    "splits",
    "num_shards",
    "treat_crowd_as_ignore",
    "on_error",
    "num_workers",
    "progress",
)


def run_dataset_converter(convert_fn, root_flag: str, *extra_flags: str) -> None:
    """The ``__main__`` of a public-dataset converter: ``convert_fn(root,
    output_dir, <the shared converter flags>, **<extra_flags>)`` from absl
    flags, with ``root_flag`` and ``--output_dir`` required."""

    def main(argv: Sequence[str]) -> None:
        del argv
        f = flags.FLAGS
        names = (root_flag, "output_dir", *_SHARED_CONVERT_FLAGS)
        run_cli(
            convert_fn,
            *(f[name].value for name in names),
            **{name: f[name].value for name in extra_flags},
        )

    flags.mark_flags_as_required([root_flag, "output_dir"])
    run_app(main)


def run_splits(
    make_items,
    spec: LabelSpec,
    output_dir: str,
    splits: Sequence[str],
    num_shards: int,
    on_error: str,
    num_workers: int,
    progress: bool,
) -> Dict[str, SplitSummary]:
    """Converts each split (``make_items(split)`` lists its items) and prints
    a summary per split to stderr."""
    summaries = {}
    for split in splits:
        summary = convert_split(
            make_items(split),
            spec,
            output_dir,
            split,
            num_shards,
            on_error=on_error,
            num_workers=num_workers,
            progress=progress,
        )
        print(summary.describe(), file=sys.stderr, flush=True)
        summaries[split] = summary
    return summaries


@dataclasses.dataclass(frozen=True)
class PublicDataset:
    """What a public dataset's converter fixes; :meth:`convert` does the rest.

    Attributes:
      list_items: ``list_items(root, split, **layout)``, the split's items.
      label_spec: ``label_spec(treat_crowd_as_ignore)``, the dataset's labels.
      splits: The splits the converter knows.
      num_shards: Shards per split unless requested (DeepLab2's
        ``_NUM_SHARDS`` of the dataset).
      default_splits: The splits converted when none are requested
        (default: all of ``splits``).
    """

    list_items: Callable[..., List[ImageItem]]
    label_spec: Callable[[bool], LabelSpec]
    splits: Tuple[str, ...]
    num_shards: int
    default_splits: Optional[Tuple[str, ...]] = None

    def convert(
        self,
        root: str,
        output_dir: str,
        splits: Optional[Sequence[str]] = None,
        num_shards: Optional[int] = None,
        treat_crowd_as_ignore: bool = True,
        on_error: str = "fail",
        num_workers: int = 1,
        progress: bool = True,
        **layout: Any,
    ) -> Dict[str, SplitSummary]:
        """Converts the requested splits (default: ``default_splits``) of the
        dataset under ``root`` into ``output_dir``; ``layout`` goes to
        ``list_items`` (e.g. Cityscapes' ``image_pattern``)."""
        return run_splits(
            lambda split: self.list_items(root, split, **layout),
            self.label_spec(treat_crowd_as_ignore),
            output_dir,
            resolve_splits(splits or self.default_splits or self.splits, self.splits),
            num_shards or self.num_shards,
            on_error,
            num_workers,
            progress,
        )
