"""Terminal output where no string is ever parsed as rich markup.

`plain_console()` is the only way eksir makes a rich Console: its markup parsing is off, so every `str` it
prints or finds in a Table cell, column or title is shown exactly as given. eksir's own colours are
attached as styles on `rich.text.Text` objects (`styled`, `line`), never written as `[red]...[/]` tags,
so there is no markup left for a hostile value to close, open or break.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

Part = str | Text | tuple[str, str]
"""A piece of a line: plain text, a Text, or (text, style)."""


def plain_console(*, stderr: bool = False, **options: Any) -> Console:
    """A Console that never interprets markup or highlights (its other options as rich's Console)."""
    options.setdefault("highlight", False)
    return Console(stderr=stderr, markup=False, **options)


def styled(value: object, style: str = "") -> Text:
    """`value` as text (None as an empty string) with eksir's `style`; markup in `value` stays literal."""
    return Text("" if value is None else str(value), style=style)


def line(*parts: Part) -> Text:
    """One line assembled from plain and styled parts, e.g. `line(("ALTERED", "red"), " ", path)`."""
    return Text.assemble(*parts)


def cells(*values: object) -> list[Text]:
    """Table cells as Text (a Text kept as is, None as ""), so a row is text whatever console prints it."""
    return [value if isinstance(value, Text) else styled(value) for value in values]
