"""The demo's closing report says how many things were found and labelled right."""

from remax_tf import demo


def test_report_prints_found_things_label_accuracy_and_confusions(capsys, tmp_path):
    metrics = {
        "num_images": 2,
        "pq": 0.5,
        "sq": 0.8,
        "rq": 0.6,
        "pq_things": 0.3,
        "pq_things_class_agnostic": 0.55,
        "pq_stuff": 0.9,
        "miou": 0.4,
        "things_found": 6,
        "things": 8,
        "thing_label_accuracy": 4 / 6,
        "thing_label_confusions": [
            {
                "ground_truth": "dotted triangle",
                "predicted": "checkered cross",
                "count": 2,
            }
        ],
    }
    demo.report(
        {"model_dir": str(tmp_path), "metrics": metrics}, "pic.png", str(tmp_path), 60
    )
    out = capsys.readouterr().out
    assert "PQ 50.0" in out and "class-agnostic 55.0" in out
    assert "6 of 8; labelled right: 66.7%" in out
    assert "dotted triangle as checkered cross (2)" in out
