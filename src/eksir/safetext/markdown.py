"""Escaping for Markdown documents (report.md, summary.md) that hold attacker-chosen text.

Why escape rather than strip: the report is evidence, so a value must read exactly as it was recorded, yet
it must not become a link, an image, emphasis, a heading, a table column or raw HTML when the document is
rendered (GitHub, a wiki, a ticket). HTML specials become entities; Markdown punctuation gets a backslash
(CommonMark and GFM render `\\*` as `*`) and so
does a leading list or heading marker; line breaks become spaces so a value stays on its line.
"""

from __future__ import annotations

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKSLASHED = frozenset("\\`*_[]|~")
_BREAKS = frozenset("\r\n\u2028\u2029\x0b\x0c\x85")


def md_escape(value: object, *, starts_line: bool = False) -> str:
    """`value` (None as "") as inline Markdown text that renders as exactly those characters.

    `starts_line`: the value begins a list item or a line, where "-", "+", "#" or "12." would open a block.
    """
    text = "" if value is None else str(value)
    out: list[str] = []
    for char in text:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        elif char in _BREAKS:
            out.append(" ")
        else:
            out.append(char)
    escaped = "".join(out)
    return _no_block_start(escaped) if starts_line else escaped


def _no_block_start(text: str) -> str:
    """Escape what would open a block at the start of a list item: "-", "+", "#" or "12." / "12)"."""
    if text[:1] in {"-", "+", "#"}:
        return "\\" + text
    digits = len(text) - len(text.lstrip("0123456789"))
    if 0 < digits <= 9 and text[digits : digits + 1] in {".", ")"}:
        return text[:digits] + "\\" + text[digits:]
    return text
