"""The shape rules ARCHITECTURE.md states that no linter checks: function size in src/.

Why a test: DESIGN.md asks for small functions (~50 lines, none over 60); a function that grows past that
is where the next bug hides, and review misses it when the diff shows only the lines added.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "eksir"
LIMIT = 60


def _long_functions() -> list[str]:
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LIMIT:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_src_is_longer_than_sixty_lines() -> None:
    assert _long_functions() == []
