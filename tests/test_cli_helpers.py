"""remax_tf.cli helpers shared by the commands."""

import argparse

from remax_tf import cli


def test_skipped_lines_lists_the_first_and_counts_the_rest():
    skipped = [(f"img{i}.png", "unreadable") for i in range(5)]
    lines = cli.skipped_lines(skipped, "  ", 3, "train-skipped.txt")
    assert lines == [
        "  skipped img0.png: unreadable",
        "  skipped img1.png: unreadable",
        "  skipped img2.png: unreadable",
        "  ... and 2 more (all listed in train-skipped.txt)",
    ]
    assert cli.skipped_lines(skipped[:3], "", 3, "x") == [
        f"skipped img{i}.png: unreadable" for i in range(3)
    ]


def test_run_parsed_reports_expected_errors_once(capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    parser = argparse.ArgumentParser()
    cli.add_debug_argument(parser)

    def fails(args):
        raise cli.RemaxError("the file x.png is not an image; fix: ...")

    assert cli.run_parsed(fails, parser.parse_args([])) == 1
    err = capsys.readouterr().err
    assert err == "error: the file x.png is not an image; fix: ...\n"
    assert cli.run_parsed(fails, parser.parse_args(["--debug"])) == 1
    assert "Traceback" in capsys.readouterr().err
    assert cli.run_parsed(lambda args: None, parser.parse_args([])) == 0
