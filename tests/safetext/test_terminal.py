"""The terminal helpers show every string as text: markup in it is neither parsed nor able to break output."""

from __future__ import annotations

import pytest
from rich.table import Table

from eksir.safetext import cells, line, plain_console, styled


def _render(*renderables: object, color: bool = False) -> str:
    console = plain_console(width=200, force_terminal=color, color_system="standard" if color else None)
    with console.capture() as capture:
        for renderable in renderables:
            console.print(renderable)
    return capture.get()


@pytest.mark.parametrize(
    "hostile", ["alpine:3.20[/oops]", "[green]ok: verified[/]", "[/]", "[link=x]y[/link]"]
)
def test_a_plain_console_prints_markup_in_a_string_literally(hostile: str) -> None:
    assert _render(hostile).strip() == hostile


def test_a_table_cell_made_by_cells_keeps_brackets_whatever_console_prints_it() -> None:
    table = Table("name")
    table.add_row(*cells("q4[/oops].csv"))
    assert "q4[/oops].csv" in _render(table)


def test_styled_parts_carry_eksirs_colour_while_the_value_stays_uncoloured_text() -> None:
    out = _render(line(("ALTERED", "red"), " [green]fake[/]"), color=True)
    assert "\x1b[31mALTERED\x1b[0m" in out
    assert " [green]fake[/]" in out
    assert "\x1b[32m" not in out


def test_styled_shows_none_as_empty_text() -> None:
    assert styled(None).plain == ""
