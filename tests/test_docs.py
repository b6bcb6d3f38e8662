"""The shell and Python snippets of README.md and docs/*.md run as written.

Convention, for everyone who writes docs:

* A fenced block whose language is ``bash``, ``sh`` or ``shell`` is a shell
  snippet, run with ``bash -e -o pipefail``; ``python`` (or ``py``) is a
  Python snippet, run in a fresh interpreter. A block with any other
  language (``text``, ``json``, ``textproto``, ...) or none is illustration
  and never runs: use those for output, file layouts, config excerpts and
  pseudo-commands.
* A shell or Python block that must not run here (it installs packages,
  downloads, needs data the repository does not have, runs for minutes or
  rewrites recorded results) has, as the line just above its opening fence
  (a line of its own; the marker quoted inside text is not one)::

      <!-- snippet: skip (the reason) -->

  The reason is required; the test reports the block as skipped with it.
  (GitHub does not render HTML comments.)
* Snippets run in document order (README.md, then docs/*.md by name) in one
  sandbox folder, so a later one may use what an earlier one wrote: the
  README's quick demo run writes ``runs/demo``, which docs/export.md and
  docs/inference.md use, as a reader who ran the demo has it.

The sandbox is a reader's working folder after the demo, at tiny settings:

* ``configs/`` is the repository's, except ``configs/demo/*.textproto``,
  which carry the tiny model settings of tests/conftest.py (65x65 crops,
  narrow decoder), so every command reading them trains, evaluates and
  exports in seconds; ``trainer/`` and ``benchmarks/`` link to the
  repository's;
* ``photos/*.jpg`` and ``photo.jpg`` are the COCO sample images,
  ``panoptic_val2017.json`` and ``panoptic_val2017/`` their ground truth;
* ``$COCO_ROOT``, ``$CITYSCAPES_ROOT``, ``$ADE20K_ROOT`` and ``$ROOT`` (your
  own dataset) hold the tests/testdata samples in the layouts
  docs/datasets.md describes, with a train and a val split; ``$DATA`` is an
  empty output folder;
* the environment has ``TF_CPP_MIN_LOG_LEVEL=2``,
  ``REMAX_TF_DISABLE_GRAPPLER=1`` (few-step runs start faster) and the
  interpreter's ``bin/`` first on ``PATH`` (``python``, ``remax-*``).

remax_tf must be installed (``pip install -e .``, as ``make test`` does):
the snippets call its commands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md"] + sorted(
    str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")
)
SHELL = ("bash", "sh", "shell")
PYTHON = ("python", "py", "python3")
TIMEOUT_SECONDS = 900
_OUTPUT_TAIL = 4000

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<language>[^\s`]*)")
_SKIP = re.compile(r"^\s*<!--\s*snippet:\s*skip\s*\((?P<reason>.*\S.*)\)\s*-->\s*$")
_MARKER = re.compile(r"^\s*<!--\s*snippet\b")  # at the start of a line

pytestmark = pytest.mark.slow  # runs the commands: trains, exports, converts


@dataclasses.dataclass(frozen=True)
class Snippet:
    document: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: Optional[str]

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in SHELL + PYTHON


def extract(document: str) -> Tuple[List[Snippet], List[str]]:
    """The fenced blocks of ``document`` and the problems of its markers."""
    lines = (REPO / document).read_text(encoding="utf-8").splitlines()
    snippets, problems = [], []
    pending: Optional[Tuple[int, str]] = None  # (line, reason) of a skip marker
    index = 0
    while index < len(lines):
        line = lines[index]
        opening = _FENCE.match(line)
        if _MARKER.search(line):
            skip = _SKIP.match(line)
            if skip is None:
                problems.append(
                    f"{document}:{index + 1}: malformed marker {line.strip()!r}; "
                    "write <!-- snippet: skip (reason) -->"
                )
            else:
                pending = (index + 1, skip.group("reason").strip())
        elif opening:
            fence, indent = opening.group("fence"), len(opening.group("indent"))
            end = index + 1
            while end < len(lines) and not (
                lines[end].strip().startswith(fence[0] * len(fence))
                and not lines[end].strip().strip(fence[0])
            ):
                end += 1
            body = "\n".join(
                text[indent:] if not text[:indent].strip() else text.lstrip()
                for text in lines[index + 1 : end]
            )
            skip_reason = None
            if pending is not None:
                if pending[0] == index:  # the line just above the fence
                    skip_reason = pending[1]
                else:
                    problems.append(
                        f"{document}:{pending[0]}: a skip marker must be on the line "
                        "just above a fence"
                    )
                pending = None
            snippet = Snippet(
                document,
                index + 1,
                opening.group("language").lower(),
                body,
                skip_reason,
            )
            if skip_reason is not None and not snippet.runs:
                problems.append(
                    f"{snippet.name}: a skip marker on a {snippet.language or 'plain'} "
                    "block, which never runs anyway"
                )
            snippets.append(snippet)
            index = end
        elif line.strip() and pending is not None:
            problems.append(
                f"{document}:{pending[0]}: a skip marker must be on the line just "
                "above a fence"
            )
            pending = None
        index += 1
    return snippets, problems


def _all_snippets() -> Tuple[List[Snippet], List[str]]:
    snippets, problems = [], []
    for document in DOCUMENTS:
        found, wrong = extract(document)
        snippets += found
        problems += wrong
    return snippets, problems


SNIPPETS, MARKER_PROBLEMS = _all_snippets()
RUNNABLE = [s for s in SNIPPETS if s.runs]


# ---------------------------------------------------------------------------
# The sandbox.


class _KeepPlaceholders(dict):
    """An environment in which every ``${VAR}`` stays ``${VAR}``."""

    def __contains__(self, name) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return "${" + name + "}"


def _write_tiny_demo_configs(
    configs: pathlib.Path, model_overrides, remax_overrides
) -> None:
    """configs/demo/*.textproto with the tiny settings of tests/conftest.py
    (placeholders kept, comments dropped)."""
    from google.protobuf import text_format

    from remax_tf.config import load_config

    for path in sorted((configs / "demo").glob("*.textproto")):
        config = load_config(str(path), environ=_KeepPlaceholders(), validate=False)
        overrides = list(model_overrides)
        if config.model_options.HasField("remax"):
            overrides += remax_overrides
        config = load_config(
            str(path), overrides, environ=_KeepPlaceholders(), validate=False
        )
        path.write_text(
            "# The tiny version of the repository's config (tests/test_docs.py).\n"
            + text_format.MessageToString(config),
            encoding="utf-8",
        )


def _coco_layout(sample: pathlib.Path, root: pathlib.Path) -> None:
    """$COCO_ROOT: {train,val}2017/ and annotations/panoptic_{split}2017*."""
    for split in ("train", "val"):
        shutil.copytree(sample / "input_images", root / f"{split}2017")
        shutil.copytree(
            sample / "panoptic_examples",
            root / "annotations" / f"panoptic_{split}2017",
        )
        shutil.copy(
            sample / "panoptic_examples.json",
            root / "annotations" / f"panoptic_{split}2017.json",
        )


def _cityscapes_layout(sample: pathlib.Path, root: pathlib.Path) -> None:
    """$CITYSCAPES_ROOT: leftImg8bit/{split}/<city>/ and gtFine/*_trainId*."""
    for split in ("train", "val"):
        images = root / "leftImg8bit" / split / "dummy"
        images.mkdir(parents=True)
        for image in (sample / "leftImg8bit").glob("*.png"):
            shutil.copy(image, images / image.name)
        gt = root / "gtFine"
        shutil.copytree(
            sample / "gtFine" / "cityscapes_panoptic_dummy_trainId",
            gt / f"cityscapes_panoptic_{split}_trainId",
        )
        shutil.copy(
            sample / "gtFine" / "cityscapes_panoptic_dummy_trainId.json",
            gt / f"cityscapes_panoptic_{split}_trainId.json",
        )


def _ade20k_layout(sample: pathlib.Path, root: pathlib.Path) -> None:
    """$ADE20K_ROOT from the COCO sample, its categories mapped onto ADE20K
    classes of the same kind (thing / stuff), numbered 0..149 as Mask2Former's
    conversion does."""
    ade = json.loads(
        (REPO / "remax_tf" / "data" / "metadata" / "ade20k_panoptic.json").read_text()
    )["classes"]
    free = {kind: [c["id"] - 1 for c in ade if c["isthing"] == kind] for kind in (0, 1)}
    data = json.loads((sample / "panoptic_examples.json").read_text())
    kinds = {c["id"]: c["isthing"] for c in data["categories"]}
    used = {s["category_id"] for a in data["annotations"] for s in a["segments_info"]}
    mapping = {category: free[kinds[category]].pop(0) for category in sorted(used)}
    for annotation in data["annotations"]:
        for segment in annotation["segments_info"]:
            segment["category_id"] = mapping[segment["category_id"]]
    data["categories"] = [
        {"id": c["id"] - 1, "name": c["name"], "isthing": c["isthing"]} for c in ade
    ]
    for split, folder in (("train", "training"), ("val", "validation")):
        shutil.copytree(sample / "input_images", root / "images" / folder)
        shutil.copytree(sample / "panoptic_examples", root / f"ade20k_panoptic_{split}")
        (root / f"ade20k_panoptic_{split}.json").write_text(json.dumps(data))


def _custom_layout(sample: pathlib.Path, root: pathlib.Path) -> None:
    """$ROOT: images/, panoptic_{train,val}.json and panoptic_{train,val}/."""
    shutil.copytree(sample / "input_images", root / "images")
    for split in ("train", "val"):
        shutil.copytree(sample / "panoptic_examples", root / f"panoptic_{split}")
        shutil.copy(sample / "panoptic_examples.json", root / f"panoptic_{split}.json")


def build_sandbox(
    root: pathlib.Path, testdata: pathlib.Path, model_overrides, remax_overrides
) -> Dict[str, str]:
    """Fills ``root`` (see the module docstring); returns the environment."""
    shutil.copytree(
        REPO / "configs",
        root / "configs",
        ignore=shutil.ignore_patterns("__init__.py", "__pycache__"),
    )
    _write_tiny_demo_configs(root / "configs", model_overrides, remax_overrides)
    for name in ("trainer", "benchmarks"):
        (root / name).symlink_to(REPO / name)
    coco = testdata / "coco_panoptic_sample"
    shutil.copytree(coco / "input_images", root / "photos")
    shutil.copy(sorted((coco / "input_images").glob("*.jpg"))[0], root / "photo.jpg")
    shutil.copytree(coco / "panoptic_examples", root / "panoptic_val2017")
    shutil.copy(coco / "panoptic_examples.json", root / "panoptic_val2017.json")
    datasets = root / "datasets"
    _coco_layout(coco, datasets / "coco")
    _cityscapes_layout(testdata / "cityscapes_dummy", datasets / "cityscapes")
    _ade20k_layout(coco, datasets / "ade20k")
    _custom_layout(coco, datasets / "widgets")
    (root / "data").mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("REMAX_DATA_DIR", "PYTHONPATH")
    }
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        REMAX_TF_DISABLE_GRAPPLER="1",
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        COCO_ROOT=str(datasets / "coco"),
        CITYSCAPES_ROOT=str(datasets / "cityscapes"),
        ADE20K_ROOT=str(datasets / "ade20k"),
        ROOT=str(datasets / "widgets"),
        DATA=str(root / "data"),
    )
    return env


def run_snippet(snippet: Snippet, cwd: pathlib.Path, env: Dict[str, str]):
    """Runs one snippet; returns the completed process."""
    if snippet.language in SHELL:
        command = ["bash", "-e", "-o", "pipefail", "-c", snippet.code]
    else:
        command = [sys.executable, "-c", snippet.code]
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


@pytest.fixture(scope="module")
def results(
    tmp_path_factory, testdata, tiny_model_overrides, tiny_remax_overrides
) -> Dict[str, Tuple[bool, str]]:
    """Every runnable, not skipped snippet, run once in document order:
    name -> (succeeded, the end of its output)."""
    root = tmp_path_factory.mktemp("docs_sandbox")
    env = build_sandbox(root, testdata, tiny_model_overrides, tiny_remax_overrides)
    outcome = {}
    for snippet in RUNNABLE:
        if snippet.skip is not None:
            continue
        start = time.time()
        try:
            done = run_snippet(snippet, root, env)
            output = (done.stdout + done.stderr)[-_OUTPUT_TAIL:]
            outcome[snippet.name] = (done.returncode == 0, output)
        except subprocess.TimeoutExpired as e:
            outcome[snippet.name] = (False, f"timed out after {e.timeout} s")
        print(f"\n[docs] {snippet.name}: {time.time() - start:.1f} s", flush=True)
    return outcome


def test_snippet_markers_are_well_formed():
    assert not MARKER_PROBLEMS, "\n".join(MARKER_PROBLEMS)


def test_the_docs_have_runnable_snippets():
    """The extraction finds the blocks (a broken parser would pass nothing)."""
    documents = {s.document for s in RUNNABLE if s.skip is None}
    assert {"README.md", "docs/export.md", "docs/inference.md"} <= documents


@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda s: s.name)
def test_snippet_runs(snippet, request):
    if snippet.skip is not None:
        pytest.skip(snippet.skip)
    succeeded, output = request.getfixturevalue("results")[snippet.name]
    assert succeeded, (
        f"{snippet.name} ({snippet.language}) failed in the docs sandbox:\n"
        f"{snippet.code}\n--- output (end) ---\n{output}"
    )
