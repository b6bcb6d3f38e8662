"""Panoptic predictions for image files, with a checkpoint, SavedModel or TFLite.

    remax-predict --model runs/demo/model \\
        --config_file configs/demo/shapes_remax.textproto \\
        --images 'photos/*.jpg' --output_dir predictions/

    remax-predict --model runs/demo/model/shapes_remax/export \\
        --images photos/ --output_dir predictions/

(or ``python -m remax_tf.predict ...``).

``--model`` is a training checkpoint (then ``--config_file`` is required), a
SavedModel directory or a ``.tflite`` file (see ``remax_tf.inference``). Images
of any size and format are read upright (EXIF orientation) as RGB. For each
image ``<name>`` the output directory receives:

* ``<name>_panoptic.png``: the COCO panoptic id PNG (``id = R + 256 G +
  256^2 B``, 0 = void);
* ``<name>_overlay.png``: the image with a colour per segment, outlines and
  class names, at the image's size;

and, for all images, ``predictions.json`` (COCO panoptic format with the
dataset's original category ids, scored by ``python -m
remax_tf.evaluation.coco_panoptic --pred_folder <output_dir>``) and
``segments.json`` (the HuggingFace-style ``segments_info`` of each image,
whose ids are the PNG's ids). See docs/inference.md.

An unreadable image is skipped with a message naming it (``--on_error skip``,
the default; the exit status is then 0 unless no image succeeded) or stops
the run (``--on_error fail``, exit status 1, nothing written). An output
directory that already holds predictions is refused unless ``--overwrite``
(which replaces them, so that no stale file stays next to the new
``predictions.json``). The outputs are written whole or not at all: into a
temporary sibling folder moved into place at the end (``remax_tf.atomic``).

Expected failures (no model, an image that matches nothing, an output
folder that cannot be written) print one ``error: ...`` line and exit with
status 1; ``--debug`` (or ``REMAX_TF_DEBUG=1``) also prints the traceback.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import TextIO
from typing import Tuple

from remax_tf import cli

# TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, at its import by the modules below.
cli.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from remax_tf import atomic  # noqa: E402
from remax_tf import common  # noqa: E402
from remax_tf import visualization  # noqa: E402
from remax_tf.errors import RemaxError  # noqa: E402
from remax_tf.evaluation.coco_format import coco_categories  # noqa: E402
from remax_tf.evaluation.coco_format import image_ids  # noqa: E402
from remax_tf.evaluation.coco_panoptic import CocoPanopticWriter  # noqa: E402
from remax_tf.inference.base import Predictor  # noqa: E402
from remax_tf.inference.images import ImageReadError  # noqa: E402
from remax_tf.inference.images import list_images  # noqa: E402
from remax_tf.inference.images import load_image  # noqa: E402
from remax_tf.inference.model_files import ModelFileError  # noqa: E402
from remax_tf.inference.predictor import load_predictor  # noqa: E402
from remax_tf.json_io import write_json_atomic  # noqa: E402
from remax_tf.postprocess import panoptic_segments  # noqa: E402

PANOPTIC_SUFFIX = "_panoptic.png"
OVERLAY_SUFFIX = "_overlay.png"
COCO_JSON = "predictions.json"
SEGMENTS_JSON = "segments.json"
ON_ERROR_CHOICES = ("skip", "fail")
# Skipped images listed in the final summary (all are in segments.json).
_SUMMARY_LIST_LIMIT = 10


class PredictError(RemaxError, RuntimeError):
    """An image failed with ``on_error="fail"`` (the message names it), or
    the output directory holds earlier predictions."""


def is_prediction_file(name: str) -> bool:
    """A file name that an earlier run of :func:`predict_images` writes."""
    return name in (COCO_JSON, SEGMENTS_JSON) or name.endswith(
        (PANOPTIC_SUFFIX, OVERLAY_SUFFIX)
    )


def previous_outputs(output_dir: str) -> List[str]:
    """The files of an earlier prediction run in ``output_dir``: the two JSON
    files and the ``*_panoptic.png`` / ``*_overlay.png`` pictures."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(
        os.path.join(output_dir, name)
        for name in os.listdir(output_dir)
        if is_prediction_file(name)
    )


def check_output_dir(output_dir: str, overwrite: bool = False) -> List[str]:
    """The earlier predictions in ``output_dir`` (:func:`previous_outputs`).

    Raises:
      OutputPathError: ``output_dir`` cannot be created or written
        (:func:`remax_tf.atomic.check_output_dir`).
      PredictError: there are earlier predictions and not ``overwrite``.
    """
    atomic.check_output_dir(output_dir)
    previous = previous_outputs(output_dir)
    if previous and not overwrite:
        raise PredictError(
            f"--output_dir {output_dir} already holds predictions ({len(previous)} "
            f"files, e.g. {os.path.basename(previous[0])}); the new files would be "
            "mixed with them. Fix: choose another --output_dir, or pass "
            "--overwrite to replace them."
        )
    return previous


def prepare_output_dir(output_dir: str, overwrite: bool = False) -> None:
    """Creates ``output_dir``; earlier predictions there are an error, or,
    with ``overwrite``, deleted (other files are left alone).

    Raises:
      PredictError: earlier predictions and not ``overwrite``.
    """
    for path in check_output_dir(output_dir, overwrite):
        os.remove(path)
    os.makedirs(output_dir, exist_ok=True)


@dataclasses.dataclass
class PredictSummary:
    """What :func:`predict_images` did.

    Attributes:
      output_dir: Where the files are.
      predicted: Input paths with outputs, in order.
      skipped: (input path, reason) of the images left out.
      seconds: Wall time of the loop.
    """

    output_dir: str
    predicted: List[str] = dataclasses.field(default_factory=list)
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [
            f"[predict] {len(self.predicted)} images predicted, {len(self.skipped)} "
            f"skipped, in {self.seconds:.1f} s -> {self.output_dir} "
            f"({COCO_JSON}, {SEGMENTS_JSON}, *{PANOPTIC_SUFFIX}, *{OVERLAY_SUFFIX})"
        ]
        lines += cli.skipped_lines(
            self.skipped, "[predict]   ", _SUMMARY_LIST_LIMIT, SEGMENTS_JSON
        )
        return "\n".join(lines)


def output_names(paths: Sequence[str]) -> Dict[str, str]:
    """A distinct output name per input path: its file name without extension;
    for names that clash, its path below the inputs' common directory (then,
    if still needed, with the extension)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    counts = collections.Counter(stems)
    directories = [os.path.dirname(os.path.abspath(p)) for p in paths]
    root = os.path.commonpath(directories) if directories else ""
    names = {}
    for path, stem in zip(paths, stems):
        if counts[stem] > 1:
            relative = os.path.relpath(os.path.abspath(path), root)
            stem = os.path.splitext(relative)[0].replace(os.sep, "__")
        names[path] = stem
    counts = collections.Counter(names.values())
    for path, name in names.items():
        if counts[name] > 1:
            names[path] = f"{name}_{os.path.splitext(path)[1].lstrip('.')}"
    return names


def _progress(items: Sequence[str], enabled: bool, stream: TextIO):
    """Yields ``items`` with a progress bar on ``stream`` (tqdm when installed,
    else one line per image)."""
    if not enabled:
        yield from items
        return
    try:
        # tqdm is optional (not in setup.py's install_requires): a bar if installed.
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        yield from tqdm(items, desc="[predict]", unit="img", file=stream)
        return
    start = time.time()
    for index, item in enumerate(items, start=1):
        yield item
        print(
            f"[predict] {index}/{len(items)} {os.path.basename(item)} "
            f"({time.time() - start:.1f} s)",
            file=stream,
            flush=True,
        )


def _segments_entry(
    path: str,
    name: str,
    image_id,
    image,
    maps: Dict[str, Any],
    descriptor,
    with_overlay: bool,
) -> Dict[str, Any]:
    result = panoptic_segments(
        maps[common.PRED_PANOPTIC_KEY],
        descriptor,
        scores=maps.get(common.PRED_SEMANTIC_SCORES_KEY),
        instance_map=maps.get(common.PRED_INSTANCE_KEY),
    )
    segments = [
        dict(
            info,
            label=descriptor.class_names[info["label_id"]],
            category_id=int(descriptor.original_category_ids[info["label_id"]]),
        )
        for info in result["segments_info"]
    ]
    return {
        "image": path,
        "image_id": image_id,
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "segmentation": name + PANOPTIC_SUFFIX,
        "overlay": name + OVERLAY_SUFFIX if with_overlay else None,
        "segments_info": segments,
    }


def predict_images(
    predictor: Predictor,
    image_paths: Sequence[str],
    output_dir: str,
    *,
    on_error: str = "skip",
    overlay: bool = True,
    progress: bool = True,
    stream: Optional[TextIO] = None,
    overwrite: bool = False,
) -> PredictSummary:
    """Predicts every image and writes the PNGs and the two JSON files.

    The files are written whole or not at all: into a temporary sibling of
    ``output_dir`` that is moved into place when every image is done
    (:func:`remax_tf.atomic.staged_output_dir`), with ``predictions.json``
    last. A run that fails leaves ``output_dir`` as it was.

    Args:
      predictor: From :func:`remax_tf.inference.load_predictor`.
      image_paths: Input files.
      output_dir: Created if needed; must not hold earlier predictions unless
        ``overwrite`` (see :func:`check_output_dir`).
      on_error: "skip": an image that cannot be read or predicted is left
        out with a message on ``stream``; "fail": raise.
      overlay: Write the ``*_overlay.png`` pictures.
      progress: Show a progress bar on ``stream``.
      stream: Where progress and messages go (default: stderr).
      overwrite: Replace earlier predictions in ``output_dir`` (other files
        there are left alone).

    Returns:
      The :class:`PredictSummary`.

    Raises:
      PredictError: with ``on_error="fail"``, naming the image; earlier
        predictions in ``output_dir`` without ``overwrite``.
      OutputPathError: ``output_dir`` cannot be created or written.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(
            f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}."
        )
    check_output_dir(output_dir, overwrite)
    summary = PredictSummary(output_dir=output_dir)
    start = time.time()
    with atomic.staged_output_dir(
        output_dir, is_prediction_file, last=(SEGMENTS_JSON, COCO_JSON)
    ) as staging:
        _predict_into(
            staging,
            predictor,
            image_paths,
            summary,
            on_error=on_error,
            overlay=overlay,
            progress=progress,
            stream=sys.stderr if stream is None else stream,
        )
    summary.seconds = time.time() - start
    return summary


def _predict_into(
    directory: str,
    predictor: Predictor,
    image_paths: Sequence[str],
    summary: PredictSummary,
    *,
    on_error: str,
    overlay: bool,
    progress: bool,
    stream: TextIO,
) -> None:
    """:func:`predict_images` writing into ``directory``; fills ``summary``."""
    descriptor = predictor.descriptor
    writer = CocoPanopticWriter(
        directory,
        os.path.join(directory, COCO_JSON),
        descriptor,
        categories=coco_categories(descriptor),
    )
    names = output_names(image_paths)
    ids = dict(zip(image_paths, image_ids([names[p] for p in image_paths])))
    entries = []
    for path in _progress(image_paths, progress, stream):
        try:
            image = load_image(path)
            maps = predictor(image)
        except (ImageReadError, ValueError, tf.errors.OpError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if on_error == "fail":
                raise PredictError(
                    f"{path}: {reason} (nothing was written to "
                    f"{summary.output_dir}). Fix: remove or repair the image, or "
                    "pass --on_error skip."
                ) from e
            print(f"[predict] skipping {path}: {reason}", file=stream, flush=True)
            summary.skipped.append((path, reason))
            continue
        name = names[path]
        panoptic = maps[common.PRED_PANOPTIC_KEY]
        writer.add(
            ids[path],
            name + PANOPTIC_SUFFIX,
            panoptic,
            scores=maps.get(common.PRED_SEMANTIC_SCORES_KEY),
        )
        if overlay:
            visualization.save_png(
                os.path.join(directory, name + OVERLAY_SUFFIX),
                visualization.overlay(image, panoptic, descriptor),
            )
        entries.append(
            _segments_entry(path, name, ids[path], image, maps, descriptor, overlay)
        )
        summary.predicted.append(path)
    writer.close()
    write_json_atomic(
        os.path.join(directory, SEGMENTS_JSON),
        {
            "model": predictor.describe(),
            "dataset": descriptor.name,
            "label_divisor": descriptor.panoptic_label_divisor,
            "images": entries,
            "skipped": [{"image": p, "error": r} for p, r in summary.skipped],
        },
    )


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="remax-predict",
        description=(
            "Panoptic predictions (COCO PNG + JSON, overlays) for image files with "
            "a training checkpoint, a SavedModel or a TFLite file (also python -m "
            "remax_tf.predict; docs/inference.md)."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a training checkpoint (a ckpt-N prefix, a directory holding a "
        "'checkpoint' file, or the trainer's --model_dir), a SavedModel directory "
        "(or export directory), or a .tflite file",
    )
    parser.add_argument(
        "--images",
        required=True,
        nargs="+",
        help="image files, globs (quote them; ** recurses) or directories",
    )
    parser.add_argument(
        "--output_dir",
        required=True,
        help="created if needed; refused if it holds earlier predictions, "
        "unless --overwrite",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete earlier predictions in --output_dir first",
    )
    parser.add_argument(
        "--config_file",
        default=None,
        help="experiment textproto that trained the checkpoint (checkpoints only; "
        "configs/<dataset>/<name>.textproto also names a shipped config)",
    )
    parser.add_argument(
        "--config_override",
        action="append",
        default=[],
        help="field.path=value (repeatable; checkpoints only)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="dataset name or descriptor .json; default: the config's, or the "
        "export metadata's",
    )
    parser.add_argument(
        "--on_error",
        choices=ON_ERROR_CHOICES,
        default="skip",
        help="an unreadable image is skipped (default) or stops the run",
    )
    parser.add_argument(
        "--overlay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write *_overlay.png pictures (default: yes)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bar on stderr (default: yes)",
    )
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def _predict(args: argparse.Namespace) -> int:
    # Refused before the model loads.
    check_output_dir(args.output_dir, args.overwrite)
    paths = list_images(args.images)
    try:
        predictor = load_predictor(
            args.model,
            config_file=args.config_file,
            config_overrides=args.config_override,
            dataset=args.dataset,
        )
    except KeyError as e:  # An unknown --dataset name.
        raise ModelFileError(e.args[0] if e.args else str(e)) from e
    print(f"[predict] model: {predictor.describe()}", file=sys.stderr, flush=True)
    summary = predict_images(
        predictor,
        paths,
        args.output_dir,
        on_error=args.on_error,
        overlay=args.overlay,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    print(summary.describe(), file=sys.stderr, flush=True)
    return 0 if summary.predicted or not summary.skipped else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    return cli.run_parsed(_predict, args)


def run() -> None:
    """Console script ``remax-predict``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
