"""Imports sit at the top of modules (docs/design.md, "Module graph").

An ``import`` inside a function hides an import cycle, or a dependency that a
reader of the module's header does not see. Anywhere in ``remax_tf/`` such an
import fails this test unless it is in :data:`ALLOWED`: an optional
third-party package (not in setup.py's ``install_requires``) that one
feature uses when it is installed, imported in a ``try`` with a fallback.
Anything else goes to the top of its module; if that makes an import cycle,
move the shared piece to a lower module.
"""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]

# (file, imported module) -> why the import may stay inside a function.
ALLOWED = {
    ("remax_tf/predict.py", "tqdm"): (
        "optional: remax-predict's progress bar when tqdm is installed, one "
        "line per image otherwise"
    ),
    ("remax_tf/inference/tflite_predictor.py", "ai_edge_litert.interpreter"): (
        "optional: the LiteRT interpreter (setup.py's 'tflite' extra); "
        "tf.lite.Interpreter otherwise"
    ),
}


def _imported_modules(node: ast.AST) -> list:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        return ["." * node.level + (node.module or "")]
    return [node.module]


def function_level_imports(path: pathlib.Path) -> list:
    """(line, module) of every import inside a function body of ``path``."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((child.lineno, m) for m in _imported_modules(child))
            visit(
                child,
                in_function
                or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
            )

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_no_import_inside_a_function_but_optional_dependencies():
    found = {}
    for path in sorted((REPO / "remax_tf").rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        for line, module in function_level_imports(path):
            if (name, module) not in ALLOWED:
                found.setdefault(name, []).append(f"line {line}: {module}")
    assert not found, (
        f"imports inside functions: {found}; import at the top of the module "
        "(move a shared piece to a lower module if that makes a cycle). Only "
        "an optional dependency may stay, listed in ALLOWED with its reason."
    )


def test_every_allowed_import_is_still_there():
    """The allow-list names no import that has gone (or moved to the top)."""
    present = {
        (path.relative_to(REPO).as_posix(), module)
        for path in (REPO / "remax_tf").rglob("*.py")
        for _, module in function_level_imports(path)
    }
    assert set(ALLOWED) <= present, sorted(set(ALLOWED) - present)
