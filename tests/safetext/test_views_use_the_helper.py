"""Every view prints through `plain_console`: a Console made anywhere else would parse markup again."""

from __future__ import annotations

import re
from pathlib import Path

import eksir

SRC = Path(eksir.__file__).parent
HELPER = SRC / "safetext" / "terminal.py"


def test_no_module_but_the_helper_constructs_a_rich_console() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        if path != HELPER
        for number, text in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(?<![\w.])Console\(", text)
    ]
    assert offenders == []


def test_no_module_turns_markup_back_on() -> None:
    offenders = [
        str(path.relative_to(SRC)) for path in sorted(SRC.rglob("*.py")) if "markup=True" in path.read_text()
    ]
    assert offenders == []
