"""The COCO panoptic scorer against an independent, deliberately simple reference.

``reference_pq`` below is written directly from the textual rules of the
official COCO panoptic evaluation (panopticapi's ``evaluation.py``), segment by
segment with boolean masks, sharing no code with ``remax_tf.evaluation``.
Predictions are built from the real COCO sample in ``tests/testdata/coco_panoptic_sample``.
"""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from remax_tf.data.datasets import get_dataset_descriptor
from remax_tf.evaluation import coco_panoptic
from remax_tf.evaluation.panoptic_quality import PanopticQuality

TOLERANCE = 1e-9


# ---------------------------------------------------------------------------
# Independent reference.


def _decode_png(path):
    rgb = np.array(Image.open(path).convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def reference_pq(gt_json_path, gt_folder, pred_json_path, pred_folder):  # noqa: C901, PLR0912, PLR0915 (test oracle: panopticapi's pq_compute, kept in its shape)
    """PQ from the rules, one segment pair at a time."""
    with open(gt_json_path) as f:
        gt_json = json.load(f)
    with open(pred_json_path) as f:
        pred_json = json.load(f)
    categories = gt_json["categories"]
    tally = {c["id"]: {"iou": 0.0, "tp": 0, "fp": 0, "fn": 0} for c in categories}
    predictions = {a["image_id"]: a for a in pred_json["annotations"]}
    for gt_ann in gt_json["annotations"]:
        pred_ann = predictions[gt_ann["image_id"]]
        gt_map = _decode_png(os.path.join(gt_folder, gt_ann["file_name"]))
        pred_map = _decode_png(os.path.join(pred_folder, pred_ann["file_name"]))
        void = gt_map == 0
        pred_masks = {s["id"]: pred_map == s["id"] for s in pred_ann["segments_info"]}
        matched_gt, matched_pred = set(), set()
        for g in gt_ann["segments_info"]:
            if g["iscrowd"]:
                continue
            g_mask = gt_map == g["id"]
            for p in pred_ann["segments_info"]:
                if p["category_id"] != g["category_id"]:
                    continue
                p_mask = pred_masks[p["id"]]
                inter = int(np.sum(g_mask & p_mask))
                if inter == 0:
                    continue
                # The union leaves out the prediction's pixels on void.
                union = (
                    g["area"] + int(p_mask.sum()) - inter - int(np.sum(p_mask & void))
                )
                iou = inter / union
                if iou > 0.5:
                    tally[g["category_id"]]["tp"] += 1
                    tally[g["category_id"]]["iou"] += iou
                    matched_gt.add(g["id"])
                    matched_pred.add(p["id"])
        for g in gt_ann["segments_info"]:
            if not g["iscrowd"] and g["id"] not in matched_gt:
                tally[g["category_id"]]["fn"] += 1
        for p in pred_ann["segments_info"]:
            if p["id"] in matched_pred:
                continue
            p_mask = pred_masks[p["id"]]
            crowd_same_category = np.zeros_like(void)
            for g in gt_ann["segments_info"]:
                if g["iscrowd"] and g["category_id"] == p["category_id"]:
                    crowd_same_category |= gt_map == g["id"]
            ignored = int(np.sum(p_mask & (void | crowd_same_category)))
            if ignored / int(p_mask.sum()) > 0.5:
                continue
            tally[p["category_id"]]["fp"] += 1

    results = {"per_class": {}}
    for name, want in (("All", None), ("Things", 1), ("Stuff", 0)):
        pqs, sqs, rqs = [], [], []
        for c in categories:
            if want is not None and c["isthing"] != want:
                continue
            t = tally[c["id"]]
            if t["tp"] + t["fp"] + t["fn"] == 0:
                if want is None:
                    results["per_class"][c["id"]] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            denominator = t["tp"] + t["fp"] / 2 + t["fn"] / 2
            pq = t["iou"] / denominator
            sq = t["iou"] / t["tp"] if t["tp"] else 0.0
            rq = t["tp"] / denominator
            pqs.append(pq)
            sqs.append(sq)
            rqs.append(rq)
            if want is None:
                results["per_class"][c["id"]] = {"pq": pq, "sq": sq, "rq": rq}
        n = len(pqs)
        results[name] = {
            "pq": sum(pqs) / n if n else 0.0,
            "sq": sum(sqs) / n if n else 0.0,
            "rq": sum(rqs) / n if n else 0.0,
            "n": n,
        }
    return results, tally


def assert_same_results(actual, expected):
    for name in ("All", "Things", "Stuff"):
        assert actual[name]["n"] == expected[name]["n"], name
        for metric in ("pq", "sq", "rq"):
            assert abs(actual[name][metric] - expected[name][metric]) <= TOLERANCE, (
                name,
                metric,
                actual[name],
                expected[name],
            )
    actual_classes = {int(k): v for k, v in actual["per_class"].items()}
    assert set(actual_classes) == set(expected["per_class"])
    for category_id, values in expected["per_class"].items():
        for metric in ("pq", "sq", "rq"):
            assert (
                abs(actual_classes[category_id][metric] - values[metric]) <= TOLERANCE
            )


# ---------------------------------------------------------------------------
# Building predictions from the ground truth.


class Sample:
    def __init__(self, root):
        self.root = root
        self.gt_json = os.path.join(root, "panoptic_examples.json")
        self.gt_folder = os.path.join(root, "panoptic_examples")
        with open(self.gt_json) as f:
            self.data = json.load(f)
        self.maps = {
            a["image_id"]: _decode_png(os.path.join(self.gt_folder, a["file_name"]))
            for a in self.data["annotations"]
        }

    def annotation(self, image_id):
        return next(a for a in self.data["annotations"] if a["image_id"] == image_id)


@pytest.fixture(scope="module")
def sample(testdata):
    return Sample(str(testdata / "coco_panoptic_sample"))


def write_prediction(folder, sample, edit):
    """Writes a prediction made by ``edit(image_id, ids, segments) -> (ids, segments)``."""
    pred_folder = os.path.join(folder, "pred")
    os.makedirs(pred_folder, exist_ok=True)
    annotations = []
    for gt_ann in sample.data["annotations"]:
        segments = [
            {"id": s["id"], "category_id": s["category_id"]}
            for s in gt_ann["segments_info"]
        ]
        ids, segments = edit(
            gt_ann["image_id"], sample.maps[gt_ann["image_id"]].copy(), segments
        )
        present = set(np.unique(ids).tolist())
        segments = [s for s in segments if s["id"] in present]
        coco_panoptic.save_id_png(os.path.join(pred_folder, gt_ann["file_name"]), ids)
        annotations.append(
            {
                "image_id": gt_ann["image_id"],
                "file_name": gt_ann["file_name"],
                "segments_info": segments,
            }
        )
    pred_json = os.path.join(folder, "pred.json")
    with open(pred_json, "w") as f:
        json.dump({"annotations": annotations}, f)
    return pred_json, pred_folder


def score_both(tmp_path, sample, edit):
    pred_json, pred_folder = write_prediction(str(tmp_path), sample, edit)
    output = os.path.join(str(tmp_path), "results.json")
    assert (
        coco_panoptic.main(
            [
                "--gt_json",
                sample.gt_json,
                "--gt_folder",
                sample.gt_folder,
                "--pred_json",
                pred_json,
                "--pred_folder",
                pred_folder,
                "--output_json",
                output,
            ]
        )
        == 0
    )
    with open(output) as f:
        actual = json.load(f)
    expected, tally = reference_pq(
        sample.gt_json, sample.gt_folder, pred_json, pred_folder
    )
    assert_same_results(actual, expected)
    return actual, tally


def _segment(sample, image_id, category_id, crowd=None, index=0):
    candidates = [
        s
        for s in sample.annotation(image_id)["segments_info"]
        if s["category_id"] == category_id and (crowd is None or s["iscrowd"] == crowd)
    ]
    return candidates[index]


IMAGE_A, IMAGE_B = 142238, 439180


# ---------------------------------------------------------------------------
# Cases.


def test_ground_truth_against_itself_is_perfect(tmp_path, sample):
    actual, tally = score_both(tmp_path, sample, lambda i, ids, segs: (ids, segs))
    present = {
        s["category_id"]
        for a in sample.data["annotations"]
        for s in a["segments_info"]
        if not s["iscrowd"]
    }
    assert actual["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": len(present)}
    for category_id in present:
        assert actual["per_class"][str(category_id)] == {
            "pq": 1.0,
            "sq": 1.0,
            "rq": 1.0,
        }
    # The copied crowd segments are predictions over their own crowd region.
    assert sum(t["fp"] for t in tally.values()) == 0


def test_empty_prediction(tmp_path, sample):
    actual, tally = score_both(
        tmp_path, sample, lambda i, ids, segs: (np.zeros_like(ids), [])
    )
    assert actual["All"]["pq"] == 0.0 and actual["All"]["n"] == 8
    assert sum(t["fn"] for t in tally.values()) == sum(
        1
        for a in sample.data["annotations"]
        for s in a["segments_info"]
        if not s["iscrowd"]
    )


def test_dropped_segments(tmp_path, sample):
    def edit(image_id, ids, segments):
        drop = {s["id"] for s in segments[::3]}
        ids[np.isin(ids, list(drop))] = 0
        return ids, [s for s in segments if s["id"] not in drop]

    actual, _ = score_both(tmp_path, sample, edit)
    assert 0.0 < actual["All"]["pq"] < 1.0


def test_merged_segments(tmp_path, sample):
    def edit(image_id, ids, segments):
        people = [
            s["id"]
            for s in sample.annotation(image_id)["segments_info"]
            if s["category_id"] == 1 and not s["iscrowd"]
        ]
        # Two pairs of people merged, the larger absorbing the smaller.
        for a, b in ((people[0], people[1]), (people[2], people[3])):
            ids[ids == b] = a
        return ids, segments

    actual, tally = score_both(tmp_path, sample, edit)
    assert actual["per_class"]["1"]["pq"] < 1.0


@pytest.mark.parametrize("shift", [(3, 5), (12, -20), (40, 60)])
def test_shifted_segments(tmp_path, sample, shift):
    def edit(image_id, ids, segments):
        return np.roll(ids, shift, axis=(0, 1)), segments

    score_both(tmp_path, sample, edit)


def test_relabelled_segments(tmp_path, sample):
    def edit(image_id, ids, segments):
        for k, s in enumerate(segments):
            if k % 2 == 0:
                # person -> bicycle, stuff -> another stuff, others -> person
                s["category_id"] = {1: 2, 184: 187, 187: 193}.get(s["category_id"], 1)
        return ids, segments

    score_both(tmp_path, sample, edit)


def test_renumbered_ids_change_nothing(tmp_path, sample):
    rng = np.random.default_rng(0)

    def shift_and_drop(image_id, ids, segments):
        ids = np.roll(ids, (7, 9), axis=(0, 1))
        drop = segments[1]["id"]
        ids[ids == drop] = 0
        return ids, [s for s in segments if s["id"] != drop]

    def renumbered(image_id, ids, segments):
        ids, segments = shift_and_drop(image_id, ids, segments)
        new_ids = rng.choice(np.arange(1, 256**3), size=len(segments), replace=False)
        lookup = {s["id"]: int(n) for s, n in zip(segments, new_ids)}
        out = np.zeros_like(ids)
        for old, new in lookup.items():
            out[ids == old] = new
        return out, [dict(s, id=lookup[s["id"]]) for s in segments]

    first, _ = score_both(tmp_path / "a", sample, shift_and_drop)
    second, _ = score_both(tmp_path / "b", sample, renumbered)
    assert first == second


def test_predictions_over_void(tmp_path, sample):
    """Void-only predictions are ignored; mostly non-void ones are false positives."""

    def edit(image_id, ids, segments):
        gt = sample.maps[image_id]
        void = np.argwhere(gt == 0)
        next_id = 1 + int(ids.max())
        # All void pixels of the upper half: a person segment, ignored.
        upper = void[void[:, 0] < gt.shape[0] // 2]
        ids[upper[:, 0], upper[:, 1]] = next_id
        segments.append({"id": next_id, "category_id": 1})
        # 20 void pixels of the lower half plus 30 pixels of the sky: an FP.
        lower = void[void[:, 0] >= gt.shape[0] // 2][:20]
        ids[lower[:, 0], lower[:, 1]] = next_id + 1
        sky = np.argwhere(gt == _segment(sample, image_id, 184)["id"])[:30]
        ids[sky[:, 0], sky[:, 1]] = next_id + 1
        segments.append({"id": next_id + 1, "category_id": 3})
        return ids, segments

    actual, tally = score_both(tmp_path, sample, edit)
    assert tally[1]["fp"] == 0
    assert tally[3]["fp"] == 2


@pytest.mark.parametrize("category_id, expect_fp", [(1, 0), (2, 1)])
def test_predictions_over_crowd(tmp_path, sample, category_id, expect_fp):
    """On a same-category crowd region a prediction is ignored, else it is an FP."""

    def edit(image_id, ids, segments):
        gt = sample.maps[image_id]
        crowd = gt == _segment(sample, image_id, 1, crowd=1)["id"]
        next_id = 1 + int(ids.max())
        # The copied crowd segment becomes a segment of `category_id`.
        crowd_id = _segment(sample, image_id, 1, crowd=1)["id"]
        segments = [s for s in segments if s["id"] != crowd_id]
        ids[crowd] = next_id
        segments.append({"id": next_id, "category_id": category_id})
        return ids, segments

    actual, tally = score_both(tmp_path, sample, edit)
    assert tally[category_id]["fp"] == 2 * expect_fp


def test_prediction_half_on_crowd_and_void(tmp_path, sample):
    """Void plus same-category crowd count together; only more than half is ignored."""

    def edit(image_id, ids, segments):
        gt = sample.maps[image_id]
        crowd_id = _segment(sample, image_id, 1, crowd=1)["id"]
        segments = [s for s in segments if s["id"] != crowd_id]
        ids[ids == crowd_id] = 0
        crowd = np.argwhere(gt == crowd_id)
        void = np.argwhere(gt == 0)
        road = np.argwhere(gt == _segment(sample, image_id, 193)["id"])
        next_id = 1 + int(ids.max())
        # 40 crowd + 21 void + 60 road: 61/121 ignored, not a false positive.
        # 40 crowd + 20 void + 60 road: 60/120 is not more than half: an FP.
        parts = (
            (crowd[:40], void[:21], road[-60:]),
            (crowd[40:80], void[21:41], road[-120:-60]),
        )
        for k, points in enumerate(parts):
            for p in points:
                ids[p[:, 0], p[:, 1]] = next_id + k
            segments.append({"id": next_id + k, "category_id": 1})
        return ids, segments

    actual, tally = score_both(tmp_path, sample, edit)
    assert tally[1]["fp"] == 2  # one per image


@pytest.mark.parametrize("seed", range(6))
def test_random_perturbations(tmp_path, sample, seed):
    rng = np.random.default_rng(seed)
    category_ids = [c["id"] for c in sample.data["categories"]]

    def edit(image_id, ids, segments):
        ids = np.roll(ids, tuple(rng.integers(-15, 16, size=2)), axis=(0, 1))
        next_id = 1 + int(ids.max())
        for _ in range(8):
            y, x = (
                rng.integers(0, ids.shape[0] - 10),
                rng.integers(0, ids.shape[1] - 10),
            )
            h, w = rng.integers(5, 120, size=2)
            choice = rng.random()
            if choice < 0.3:
                ids[y : y + h, x : x + w] = 0
            elif choice < 0.7:
                ids[y : y + h, x : x + w] = next_id
                segments.append(
                    {
                        "id": next_id,
                        "category_id": int(rng.choice(category_ids[:3] + [184, 193])),
                    }
                )
                next_id += 1
            else:
                target = segments[int(rng.integers(len(segments)))]
                ids[y : y + h, x : x + w] = target["id"]
        for s in segments:
            if rng.random() < 0.15:
                s["category_id"] = int(rng.choice([1, 2, 8, 19, 184, 187]))
        return ids, segments

    score_both(tmp_path, sample, edit)


@pytest.mark.slow  # starts a subprocess
def test_command_line_prints_the_table(tmp_path, sample, repo_root):
    output = tmp_path / "self.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "remax_tf.evaluation.coco_panoptic",
            "--gt_json",
            sample.gt_json,
            "--gt_folder",
            sample.gt_folder,
            "--pred_json",
            sample.gt_json,
            "--pred_folder",
            sample.gt_folder,
            "--output_json",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(repo_root),
    )
    assert "          |    PQ     SQ     RQ     N" in completed.stdout
    assert "All       | 100.0  100.0  100.0     8" in completed.stdout
    assert "Things    | 100.0  100.0  100.0     4" in completed.stdout
    assert "Stuff     | 100.0  100.0  100.0     4" in completed.stdout
    result = json.loads(output.read_text())
    assert set(result) == {"All", "Things", "Stuff", "per_class"}
    assert len(result["per_class"]) == 133


def test_inconsistent_predictions_raise(tmp_path, sample):
    def missing_from_json(image_id, ids, segments):
        return ids, segments[1:]

    pred_json, pred_folder = write_prediction(
        str(tmp_path / "a"), sample, missing_from_json
    )
    with pytest.raises(KeyError, match="not in its segments_info"):
        coco_panoptic.pq_compute(
            sample.gt_json, pred_json, sample.gt_folder, pred_folder, verbose=False
        )

    def unknown_category(image_id, ids, segments):
        segments[0]["category_id"] = 999
        return ids, segments

    pred_json, pred_folder = write_prediction(
        str(tmp_path / "b"), sample, unknown_category
    )
    with pytest.raises(KeyError, match="unknown category_id 999"):
        coco_panoptic.pq_compute(
            sample.gt_json, pred_json, sample.gt_folder, pred_folder, verbose=False
        )

    pred_json, pred_folder = write_prediction(
        str(tmp_path / "c"), sample, lambda i, x, s: (x, s)
    )
    with open(pred_json) as f:
        data = json.load(f)
    data["annotations"][0]["segments_info"].append({"id": 12345, "category_id": 1})
    with open(pred_json, "w") as f:
        json.dump(data, f)
    with pytest.raises(KeyError, match=r"\[12345\] are in segments_info"):
        coco_panoptic.pq_compute(
            sample.gt_json, pred_json, sample.gt_folder, pred_folder, verbose=False
        )
    data["annotations"].pop()
    with open(pred_json, "w") as f:
        json.dump(data, f)
    with pytest.raises(KeyError, match="no prediction for the image"):
        coco_panoptic.pq_compute(
            sample.gt_json, pred_json, sample.gt_folder, pred_folder, verbose=False
        )


def test_id_png_round_trip(tmp_path):
    ids = np.array([[0, 1, 255], [256, 65536, 256**3 - 1]], np.int64)
    path = str(tmp_path / "ids.png")
    coco_panoptic.save_id_png(path, ids)
    assert np.array_equal(coco_panoptic.load_id_png(path), ids)
    assert coco_panoptic.id_to_rgb(np.array([[1 + 2 * 256 + 3 * 65536]]))[
        0, 0
    ].tolist() == [1, 2, 3]


def test_writer_and_deeplab2_maps_agree_with_reference(tmp_path, sample):
    """DeepLab2 maps -> writer -> reference equals PanopticQuality on the maps."""
    descriptor = get_dataset_descriptor("coco_panoptic")
    pq = PanopticQuality(
        {
            c: c in set(descriptor.thing_class_ids)
            for c in descriptor.thing_stuff_class_ids
        },
        descriptor.panoptic_label_divisor,
        descriptor.ignore_label,
    )
    writer = coco_panoptic.CocoPanopticWriter(
        str(tmp_path / "pred"), str(tmp_path / "pred.json"), descriptor
    )
    rng = np.random.default_rng(3)
    for gt_ann in sample.data["annotations"]:
        ids = sample.maps[gt_ann["image_id"]]
        panoptic, semantic, crowd = coco_panoptic.coco_to_deeplab2(
            ids, gt_ann["segments_info"], descriptor
        )
        assert crowd.sum() == sum(
            s["area"] for s in gt_ann["segments_info"] if s["iscrowd"]
        )
        # A prediction: the ground truth shifted, a block of a thing and a block
        # of void, crowd pixels predicted as their own class.
        pred = np.where(crowd == 1, semantic * 256 + 0, panoptic)
        pred = np.roll(pred, (4, -6), axis=(0, 1))
        pred[10:60, 10:90] = 3 * 256 + 7
        pred[-40:, -50:] = 0
        pred[rng.random(pred.shape) < 0.01] = 1 * 256 + 1
        pq.update(panoptic, pred, crowd, semantic, image_name=str(gt_ann["image_id"]))
        writer.add(gt_ann["image_id"], gt_ann["file_name"], pred)
    writer.close()
    expected, _ = reference_pq(
        sample.gt_json,
        sample.gt_folder,
        str(tmp_path / "pred.json"),
        str(tmp_path / "pred"),
    )
    # The reference speaks COCO category ids; PanopticQuality dataset ids.
    to_original = descriptor.original_category_ids
    actual = pq.result()
    actual["per_class"] = {to_original[k]: v for k, v in actual["per_class"].items()}
    assert_same_results(actual, expected)
    segments = json.loads((tmp_path / "pred.json").read_text())["annotations"][0][
        "segments_info"
    ]
    assert {"id", "category_id", "iscrowd", "area", "bbox"} <= set(segments[0])


def test_gt_area_comes_from_the_json(tmp_path, sample):
    """As in panopticapi, the ground-truth area of the JSON enters the union."""
    data = json.loads(open(sample.gt_json).read())
    data["annotations"] = data["annotations"][:1]
    sky = next(
        s for s in data["annotations"][0]["segments_info"] if s["category_id"] == 184
    )
    sky["area"] *= 3  # IoU of a perfect prediction drops to 1/3: no match.
    gt_json = tmp_path / "gt.json"
    gt_json.write_text(json.dumps(data))
    results = coco_panoptic.pq_compute(
        str(gt_json), sample.gt_json, sample.gt_folder, sample.gt_folder, verbose=False
    )
    assert results["per_class"][184]["pq"] == 0.0
    assert results["per_class"][187]["pq"] == 1.0
