"""COCO panoptic format: reading, writing, and scoring it like panopticapi.

The format (COCO panoptic, as panopticapi reads it): per image, a PNG whose
colour encodes the segment id as ``id = R + 256 G + 256^2 B`` (0 = void / no
segment) and an entry of the JSON's ``annotations`` list with ``image_id``,
``file_name`` and ``segments_info``
``[{"id", "category_id", "iscrowd", "area", "bbox"}]`` in the dataset's
original category ids.

Command line (scores any COCO-format predictions; categories come from the
ground-truth JSON)::

  python -m remax_tf.evaluation.coco_panoptic \\
      --gt_json panoptic_val2017.json --gt_folder panoptic_val2017 \\
      --pred_json predictions.json --pred_folder predictions \\
      [--output_json pq.json] [--workers 4]

It prints panopticapi's PQ/SQ/RQ/N table and writes ``{"All"|"Things"|"Stuff":
{"pq", "sq", "rq", "n"}, "per_class": {category_id: {"pq", "sq", "rq"}}}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np
from PIL import Image

from remax_tf import atomic
from remax_tf import cli
from remax_tf.data.panoptic_ids import id_to_rgb
from remax_tf.data.panoptic_ids import rgb_to_id
from remax_tf.data.panoptic_labels import LabelSpec
from remax_tf.data.panoptic_labels import labels_from_segments
from remax_tf.data.panoptic_labels import original_category_map
from remax_tf.errors import RemaxError
from remax_tf.evaluation.panoptic_quality import PQStat
from remax_tf.evaluation.panoptic_quality import accumulate_image
from remax_tf.json_io import write_json_atomic
from remax_tf.postprocess.segments import panoptic_segments


def load_id_png(path: str) -> np.ndarray:
    """Reads a COCO panoptic PNG as [H, W] uint32 segment ids."""
    try:
        with Image.open(path) as image:
            rgb = np.array(image.convert("RGB"), dtype=np.uint32)
    except OSError as e:
        raise OSError(f"cannot read panoptic PNG {path}: {e}") from e
    return rgb_to_id(rgb)


def save_id_png(path: str, ids: np.ndarray) -> None:
    """Writes [H, W] segment ids as a COCO panoptic PNG."""
    Image.fromarray(id_to_rgb(ids)).save(path, format="PNG")


def read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read JSON {path}: {e}") from e


def categories_from_json(data: Mapping) -> Dict[int, bool]:
    """{category_id: isthing} in the order of the JSON's ``categories``."""
    if "categories" not in data:
        raise ValueError(
            "the ground-truth JSON has no 'categories' list; PQ needs it to know "
            "the classes and which are things."
        )
    return {int(c["id"]): c.get("isthing", 0) == 1 for c in data["categories"]}


# ---------------------------------------------------------------------------
# Scoring.


def _segments_by_id(annotation: Mapping) -> Dict[int, dict]:
    return {int(s["id"]): dict(s) for s in annotation["segments_info"]}


def _score_pairs(
    pairs: Sequence[Tuple[Mapping, Mapping]],
    gt_folder: str,
    pred_folder: str,
    categories: Mapping[int, bool],
) -> PQStat:
    stat = PQStat()
    for gt_annotation, pred_annotation in pairs:
        name = str(gt_annotation.get("image_id", gt_annotation.get("file_name")))
        gt_ids = load_id_png(os.path.join(gt_folder, gt_annotation["file_name"]))
        pred_ids = load_id_png(os.path.join(pred_folder, pred_annotation["file_name"]))
        gt_segments = _segments_by_id(gt_annotation)
        missing_area = [i for i, s in gt_segments.items() if "area" not in s]
        if missing_area:
            # panopticapi requires "area"; counting the PNG is the best fallback.
            counts = dict(zip(*np.unique(gt_ids, return_counts=True)))
            for segment_id in missing_area:
                gt_segments[segment_id]["area"] = int(counts.get(segment_id, 0))
        accumulate_image(
            stat,
            gt_ids,
            gt_segments,
            pred_ids,
            _segments_by_id(pred_annotation),
            categories=categories,
            image_name=name,
        )
    return stat


def _score_chunk(args) -> PQStat:
    return _score_pairs(*args)


def pq_compute(
    gt_json_file: str,
    pred_json_file: str,
    gt_folder: Optional[str] = None,
    pred_folder: Optional[str] = None,
    workers: int = 1,
    verbose: bool = True,
) -> dict:
    """Scores COCO-format panoptic predictions against COCO-format ground truth.

    Folders default to the JSON paths without ``.json`` (as panopticapi).

    Args:
      gt_json_file: Ground-truth JSON (with ``categories``).
      pred_json_file: Prediction JSON (``annotations``).
      gt_folder: Folder of the ground-truth PNGs.
      pred_folder: Folder of the predicted PNGs.
      workers: Processes to spread the images over.
      verbose: Print the folders and the result table.

    Returns:
      {"All"|"Things"|"Stuff": {"pq", "sq", "rq", "n"},
       "per_class": {category_id: {"pq", "sq", "rq"}}}.
    """
    start = time.time()
    gt_json = read_json(gt_json_file)
    pred_json = read_json(pred_json_file)
    if gt_folder is None:
        gt_folder = gt_json_file.replace(".json", "")
    if pred_folder is None:
        pred_folder = pred_json_file.replace(".json", "")
    categories = categories_from_json(gt_json)
    if verbose:
        print("Evaluation panoptic segmentation metrics:")
        print("Ground truth:")
        print(f"\tSegmentation folder: {gt_folder}")
        print(f"\tJSON file: {gt_json_file}")
        print("Prediction:")
        print(f"\tSegmentation folder: {pred_folder}")
        print(f"\tJSON file: {pred_json_file}")
    for kind, folder in (("ground truth", gt_folder), ("predicted", pred_folder)):
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"folder {folder} with {kind} segmentations doesn't exist."
            )
    if "annotations" not in pred_json:
        raise ValueError(f"{pred_json_file} has no 'annotations' list.")
    predictions = {a["image_id"]: a for a in pred_json["annotations"]}
    pairs = []
    for gt_annotation in gt_json["annotations"]:
        image_id = gt_annotation["image_id"]
        if image_id not in predictions:
            raise KeyError(
                f"no prediction for the image with id: {image_id} in {pred_json_file}."
            )
        pairs.append((gt_annotation, predictions[image_id]))

    workers = max(1, min(int(workers), len(pairs)))
    if workers == 1:
        stat = _score_pairs(pairs, gt_folder, pred_folder, categories)
    else:
        chunks = [
            (pairs[i::workers], gt_folder, pred_folder, categories)
            for i in range(workers)
        ]
        # spawn: safe even when the caller has imported TensorFlow.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            stat = PQStat()
            for part in pool.map(_score_chunk, chunks):
                stat.add(part)
    results = stat.results(categories)
    if verbose:
        print(format_results(results))
        print(f"Time elapsed: {time.time() - start:0.2f} seconds")
    return results


def format_results(results: Mapping) -> str:
    """panopticapi's table: PQ, SQ, RQ in percent and N per row."""
    lines = ["{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}".format("", "PQ", "SQ", "RQ", "N")]
    lines.append("-" * (10 + 7 * 4))
    for name in ("All", "Things", "Stuff"):
        row = results[name]
        lines.append(
            "{:10s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}".format(
                name, 100 * row["pq"], 100 * row["sq"], 100 * row["rq"], row["n"]
            )
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Converting DeepLab2 panoptic maps to and from the COCO format.


def _bbox(mask: np.ndarray) -> List[int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [
        int(cols[0]),
        int(rows[0]),
        int(cols[-1] - cols[0] + 1),
        int(rows[-1] - rows[0] + 1),
    ]


def panoptic_to_coco(
    panoptic_map: np.ndarray, descriptor, scores: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, List[dict]]:
    """A DeepLab2 panoptic map as COCO segment ids and ``segments_info``.

    Args:
      panoptic_map: [H, W] ``semantic * divisor + instance`` map.
      descriptor: The dataset's ``DatasetDescriptor``; its
        ``original_category_ids`` give the exported category ids.
      scores: Optional [H, W] per-pixel scores; each segment gets their mean
        as ``score`` (ignored by PQ).

    Returns:
      ([H, W] int64 ids 1..S, 0 = void; the ``segments_info`` list).
    """
    result = panoptic_segments(panoptic_map, descriptor, scores=scores)
    ids = result["segmentation"].astype(np.int64)
    ids[ids < 0] = 0
    segments_info = []
    for info in result["segments_info"]:
        category_id = descriptor.original_category_ids[info["label_id"]]
        if category_id < 0:
            raise ValueError(
                f"class {info['label_id']} of dataset {descriptor.name!r} has no "
                "original category id to export."
            )
        mask = ids == info["id"]
        entry = {
            "id": info["id"],
            "category_id": int(category_id),
            "iscrowd": 0,
            "area": int(mask.sum()),
            "bbox": _bbox(mask),
        }
        if info["score"] is not None:
            entry["score"] = info["score"]
        segments_info.append(entry)
    return ids, segments_info


class CocoPanopticWriter:
    """Writes predictions as COCO panoptic PNGs plus one JSON.

    Example::

      writer = CocoPanopticWriter("out/pred", "out/pred.json", descriptor)
      writer.add(image_id, "000000142238", panoptic_map)
      writer.close()   # writes the JSON (atomically)
    """

    def __init__(
        self,
        pred_folder: str,
        pred_json: str,
        descriptor,
        categories: Optional[Sequence[Mapping]] = None,
    ) -> None:
        """Args:
        pred_folder: Folder for the PNGs (created).
        pred_json: Path of the JSON written by :meth:`close`.
        descriptor: The dataset.
        categories: Optional COCO ``categories`` list copied into the JSON.
        """
        self.pred_folder = pred_folder
        self.pred_json = pred_json
        self.descriptor = descriptor
        self.categories = list(categories) if categories is not None else None
        self.annotations: List[dict] = []
        os.makedirs(pred_folder, exist_ok=True)

    def add(
        self,
        image_id: Any,
        file_name: str,
        panoptic_map: np.ndarray,
        scores: Optional[np.ndarray] = None,
    ) -> dict:
        """Writes one image's PNG and records its annotation.

        Args:
          image_id: The image's id in the ground-truth JSON.
          file_name: Base name; ``.png`` is appended when missing.
          panoptic_map: [H, W] DeepLab2 panoptic map at the original size.
          scores: Optional [H, W] per-pixel scores.

        Returns:
          The annotation entry.
        """
        if not file_name.endswith(".png"):
            file_name = os.path.splitext(file_name)[0] + ".png"
        ids, segments_info = panoptic_to_coco(panoptic_map, self.descriptor, scores)
        save_id_png(os.path.join(self.pred_folder, file_name), ids)
        annotation = {
            "image_id": image_id,
            "file_name": file_name,
            "segments_info": segments_info,
        }
        self.annotations.append(annotation)
        return annotation

    def close(self) -> None:
        data: Dict[str, Any] = {"annotations": self.annotations}
        if self.categories is not None:
            data["categories"] = self.categories
        write_json_atomic(self.pred_json, data)


def coco_to_deeplab2(
    ids: np.ndarray,
    segments_info: Sequence[Mapping],
    descriptor,
    treat_crowd_as_ignore: bool = True,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCO ground truth in DeepLab2's encoding, as the dataset converters
    write it (:func:`remax_tf.data.panoptic_labels.labels_from_segments`).

    Categories map to dataset semantic ids through
    ``descriptor.original_category_ids``; thing instances are numbered from 1
    per class in ``segments_info`` order; crowd pixels get instance 0 and, with
    ``treat_crowd_as_ignore`` (DeepLab2's default), the ignore label. Data the
    converters reject raises their ``ConversionError`` (a ``ValueError``).

    Returns:
      (panoptic [H, W] int32, semantic [H, W] int32 keeping the class of
      crowd pixels, is_crowd [H, W] int32).
    """
    spec = LabelSpec.for_dataset(
        descriptor, original_category_map(descriptor), treat_crowd_as_ignore
    )
    return tuple(
        labels_from_segments(
            ids, segments_info, spec, f"{descriptor.name} ground truth"
        )
    )


# ---------------------------------------------------------------------------
# Command line.


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="remax-evaluate",
        description="Scores COCO-format panoptic predictions against a COCO-format "
        "ground truth with the rules of the official panopticapi pq_compute (also "
        "python -m remax_tf.evaluation.coco_panoptic). Prints the PQ/SQ/RQ/N table.",
    )
    parser.add_argument(
        "--gt_json",
        required=True,
        help="ground-truth JSON (annotations, categories), e.g. panoptic_val2017.json",
    )
    parser.add_argument(
        "--gt_folder",
        default=None,
        help="folder of the ground-truth PNGs (default: gt_json without .json)",
    )
    parser.add_argument(
        "--pred_json",
        required=True,
        help="prediction JSON, e.g. the predictions.json of remax-predict",
    )
    parser.add_argument(
        "--pred_folder",
        default=None,
        help="folder of the predicted PNGs (default: pred_json without .json)",
    )
    parser.add_argument(
        "--output_json",
        default=None,
        help="also write the results (All/Things/Stuff and per class) here",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes scoring images in parallel"
    )
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


class EvaluationInputError(RemaxError, ValueError):
    """Ground truth or predictions that cannot be scored (a missing or bad
    JSON or PNG); the message names the file."""


def _evaluate(args: argparse.Namespace) -> int:
    """``main`` after parsing: expected failures raise RemaxError."""
    if args.output_json:
        # Checked before the (long) scoring, which would be lost.
        atomic.check_output_file(args.output_json, "--output_json")
    try:
        results = pq_compute(
            args.gt_json,
            args.pred_json,
            gt_folder=args.gt_folder,
            pred_folder=args.pred_folder,
            workers=args.workers,
        )
    except (OSError, ValueError, KeyError) as e:
        if isinstance(e, RemaxError):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise EvaluationInputError(message) from e
    if args.output_json:
        write_json_atomic(args.output_json, results)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    return cli.run_parsed(_evaluate, args)


def run() -> None:
    """Console script ``remax-evaluate``."""
    sys.exit(main())


if __name__ == "__main__":
    run()
