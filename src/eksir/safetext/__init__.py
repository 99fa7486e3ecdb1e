"""Text from findings, logs and APIs shown to people: in a terminal as text (never rich markup), in
Markdown escaped (never raw HTML or Markdown syntax).

Why one package: a pod name, an image, a user agent or an S3 key is chosen by the attacker. Rendered as rich
markup, `alpine:3.20[/oops]` crashed `eksir triage` and `[green]ok: verified[/]` drew a fake row; rendered
into report.md, `<img onerror=...>` ran in a review tool. Every view goes through these helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eksir.safetext.markdown import md_escape
from eksir.safetext.slack import mrkdwn_escape

if TYPE_CHECKING:
    from eksir.safetext.terminal import cells, line, plain_console, styled

__all__ = ["cells", "line", "md_escape", "mrkdwn_escape", "plain_console", "styled"]
_TERMINAL = frozenset({"cells", "line", "plain_console", "styled"})


def __getattr__(name: str) -> Any:
    """The terminal helpers import rich: loaded on first use, so a run that prints only JSON never imports it
    (every command pays for what it imports; see eksir.cli.lazy)."""
    if name in _TERMINAL:
        from eksir.safetext import terminal  # noqa: PLC0415

        return getattr(terminal, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
