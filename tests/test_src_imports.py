"""What the product's modules may import, read from their source with `ast` (nothing is imported or run).

Why by parsing and not by importing: an import that happens only inside a function (the lazy imports that
keep `eksir --help` fast) is still a dependency, and importing every module to look would hide it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "eksir"


def imported_roots(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in one file, at any depth (lazy imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def offenders(roots: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """`file:line package` for every module under src/eksir (outside `allowed` folders) importing `roots`."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(allowed):
            continue
        found += [f"{relative}:{line} {root}" for line, root in imported_roots(path) if root in roots]
    return found


def test_the_walker_sees_lazy_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import pytest\n    from boto3.session import Session\n")
    assert list(imported_roots(module)) == [(2, "pytest"), (3, "boto3")]


def test_no_module_of_the_product_imports_pytest() -> None:
    assert offenders({"pytest", "_pytest"}) == []


SDKS = {"boto3", "botocore", "kubernetes"}
SDK_LAYERS = ("clients/", "lab/")
"""clients/ wraps the SDKs for the product (DESIGN.md); lab/ plays the world (moto, a real API server)."""


def test_only_clients_and_the_lab_import_an_sdk() -> None:
    """Recovery, prevention and close-out imported SDKs until they moved into actions/ (issue 11)."""
    assert offenders(SDKS, SDK_LAYERS) == []


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run: everything except what sits under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                yield from _runtime_imports(child)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def test_the_boto3_type_stubs_are_imported_only_while_type_checking() -> None:
    """types-boto3 is a dev dependency: an installed eksir must import without it."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _runtime_imports(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path.relative_to(SRC)}:{node.lineno}" for n in names if n.startswith("types_boto3")]
    assert found == []
