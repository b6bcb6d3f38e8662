"""docs/design.md's module graph is the code's.

The edges are recomputed from the source: every ``import`` of ``remax_tf``
outside a function body (module level, class bodies and module-level
``if``/``try`` blocks included; imports deferred into functions are listed
by tests/test_import_layering.py), aggregated per package: a subpackage of
``remax_tf`` (``config``, ``data``, ...) or a top-level module (``common``,
``train``, ...) is one node. Every edge of the code must be in the doc's
table and the table must claim no other edge.

    python tests/test_design_doc.py   # prints the table for docs/design.md
"""

from __future__ import annotations

import ast
import collections
import pathlib
import re
from typing import Dict
from typing import Set

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "remax_tf"
DESIGN = REPO / "docs" / "design.md"
TABLE_TITLE = "## Module graph"


def _node(module: str) -> str | None:
    """The package-level node of a dotted ``remax_tf`` module, else None."""
    parts = module.split(".")
    if parts[0] != "remax_tf":
        return None
    return parts[1] if len(parts) > 1 else "remax_tf"


def _is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir()


def _absolute(path: pathlib.Path, level: int, module: str | None) -> str:
    package = list(path.relative_to(REPO).with_suffix("").parts[:-1])
    if level:
        package = package[: len(package) - (level - 1)]
        return ".".join(package + ([module] if module else []))
    return module or ""


def module_level_imports(path: pathlib.Path) -> Set[str]:
    """Nodes that ``path`` imports outside function bodies."""
    found: Set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (_node(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                module = _absolute(path, child.level, child.module)
                if module == "remax_tf":
                    for alias in child.names:
                        found.add(alias.name if _is_module(alias.name) else "remax_tf")
                elif _node(module):
                    found.add(_node(module))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def code_edges() -> Dict[str, Set[str]]:
    """Package-level import edges of remax_tf, self-edges left out."""
    edges: Dict[str, Set[str]] = collections.defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join(path.relative_to(REPO).with_suffix("").parts)
        source = _node(dotted.removesuffix(".__init__"))
        edges[source] |= module_level_imports(path) - {source}
    return dict(edges)


def doc_edges(text: str) -> Dict[str, Set[str]]:
    """The table under ``## Module graph``: ``| `node` | `a`, `b` | ...``."""
    section = text.split(TABLE_TITLE, 1)[1].split("\n## ", 1)[0]
    edges: Dict[str, Set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"`[a-z_0-9]+`", cells[0]):
            continue
        edges[cells[0].strip("`")] = set(re.findall(r"`([a-z_0-9]+)`", cells[1]))
    return edges


def markdown_table(edges: Dict[str, Set[str]]) -> str:
    rows = ["| package | imports (module level) |", "|---|---|"]
    for source in sorted(edges):
        targets = ", ".join(f"`{t}`" for t in sorted(edges[source])) or "(nothing)"
        rows.append(f"| `{source}` | {targets} |")
    return "\n".join(rows)


def test_every_import_edge_of_the_code_is_in_the_design_doc():
    documented = doc_edges(DESIGN.read_text(encoding="utf-8"))
    missing = {
        f"{source} -> {target}"
        for source, targets in code_edges().items()
        for target in targets
        if target not in documented.get(source, set())
    }
    assert not missing, (
        f"docs/design.md's module graph lacks {sorted(missing)}; "
        "python tests/test_design_doc.py prints the table."
    )


def test_the_design_doc_claims_no_edge_the_code_lacks():
    code = code_edges()
    extra = {
        f"{source} -> {target}"
        for source, targets in doc_edges(DESIGN.read_text(encoding="utf-8")).items()
        for target in targets
        if target not in code.get(source, set())
    }
    assert not extra, (
        f"docs/design.md's module graph claims {sorted(extra)}, which the code "
        "no longer imports; python tests/test_design_doc.py prints the table."
    )


def test_every_package_has_a_row():
    documented = doc_edges(DESIGN.read_text(encoding="utf-8"))
    assert set(code_edges()) <= set(documented)


if __name__ == "__main__":
    print(markdown_table(code_edges()))
