"""Imports of remax_tf go one way and sit at the top of modules (docs/design.md).

An ``import remax_tf...`` inside a function hides an import cycle or keeps
TensorFlow out of a command's ``--help``. The files below may still defer
that many (the commands and the trainer's optional parts; see each
function); anywhere else, or more of them, fails: import at the top, and if
that makes a cycle, move the shared piece to a lower module.
"""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]

# file -> function-level imports of remax_tf modules it may hold.
ALLOWED = {
    "remax_tf/config/__init__.py": 1,
    "remax_tf/convert_deeplab2.py": 6,
    "remax_tf/data/__init__.py": 1,
    "remax_tf/data/conversion.py": 3,
    "remax_tf/data/shapes.py": 2,
    "remax_tf/demo.py": 14,
    "remax_tf/evaluation/coco_panoptic.py": 1,
    "remax_tf/evaluation/panoptic_evaluator.py": 1,
    "remax_tf/export/__main__.py": 1,
    "remax_tf/export/exporter.py": 3,
    "remax_tf/export/saved_model.py": 1,
    "remax_tf/predict.py": 10,
    "remax_tf/train.py": 2,
    "remax_tf/training/batch_norm_stats.py": 6,
    "remax_tf/training/checkpoints.py": 2,
    "remax_tf/training/evaluator.py": 3,
    "remax_tf/training/image_summaries.py": 2,
    "remax_tf/training/inputs.py": 1,
    "remax_tf/training/pretrain_backbone.py": 1,
    "remax_tf/training/train_lib.py": 7,
}


def _deferred_remax_imports(path: pathlib.Path) -> int:
    count = 0

    def visit(node, in_function):
        nonlocal count
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef)
            )
            if in_function and isinstance(child, ast.ImportFrom):
                count += (child.module or "").startswith("remax_tf")
            elif in_function and isinstance(child, ast.Import):
                count += any(a.name.startswith("remax_tf") for a in child.names)
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return count


def test_remax_tf_imports_inside_functions_stay_within_the_allow_list():
    found = {}
    for path in sorted((REPO / "remax_tf").rglob("*.py")):
        count = _deferred_remax_imports(path)
        if count:
            found[path.relative_to(REPO).as_posix()] = count
    over = {
        name: (count, ALLOWED.get(name, 0))
        for name, count in found.items()
        if count > ALLOWED.get(name, 0)
    }
    assert not over, (
        "imports of remax_tf inside functions (found, allowed): "
        f"{over}; import at the top of the module (move a shared piece to a "
        "lower module if that makes a cycle)."
    )
