"""Issue #18 ("Conventions"): `-s` was `--source` in hunt and `--scenario` elsewhere. A short flag means one
long option in every command, as in aws and kubectl; this walks the whole command tree to prove it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import typer.main

from tests.cli.test_lazy_commands import _eager_app


def _walk(command: Any, path: str, found: dict[str, set[str]]) -> None:
    """Every option of `command` and its subcommands (typer's own click: duck-typed on `commands`)."""
    for param in command.params:
        shorts = [
            o for o in (*param.opts, *param.secondary_opts) if o.startswith("-") and not o.startswith("--")
        ]
        longs = sorted(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        for short in shorts:
            found[short].add(f"{longs[0] if longs else param.name} ({path})")
    for name, sub in (getattr(command, "commands", None) or {}).items():
        _walk(sub, f"{path} {name}", found)


def _longs(entries: set[str]) -> set[str]:
    return {entry.split(" (", 1)[0] for entry in entries}


def test_every_short_flag_means_the_same_long_option_in_every_command() -> None:
    found: dict[str, set[str]] = defaultdict(set)
    root: Any = typer.main.get_command(_eager_app())
    _walk(root, "eksir", found)
    clashes = {short: sorted(entries) for short, entries in found.items() if len(_longs(entries)) > 1}
    assert clashes == {}
    assert _longs(found["-s"]) == {"--source"}
    assert _longs(found["-o"]) == {"--output"}
