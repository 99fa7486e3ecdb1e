"""Markdown escaping: a hostile value renders as exactly its characters, never as HTML, links or layout."""

from __future__ import annotations

import pytest

from eksir.safetext import md_escape


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("[click](http://evil)", "\\[click\\](http://evil)"),
        ("a|b", "a\\|b"),
        ("**bold** _it_ `code` ~~x~~", "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~\\~x\\~\\~"),
        ("line1\nline2\rline3", "line1 line2 line3"),
        ("&amp;", "&amp;amp;"),
        ("back\\slash", "back\\\\slash"),
        (None, ""),
    ],
)
def test_markdown_and_html_syntax_in_a_value_is_escaped(value: object, escaped: str) -> None:
    assert md_escape(value) == escaped


@pytest.mark.parametrize(
    ("value", "escaped"), [("- x", "\\- x"), ("+ x", "\\+ x"), ("# x", "\\# x"), ("12. x", "12\\. x")]
)
def test_a_value_that_starts_a_line_cannot_open_a_list_or_heading(value: str, escaped: str) -> None:
    assert md_escape(value, starts_line=True) == escaped
    assert md_escape(value) == value


def test_plain_text_is_left_as_it_is() -> None:
    assert md_escape("10.0.12.7 kube-system/node-problem-detector-x1 8.0") == (
        "10.0.12.7 kube-system/node-problem-detector-x1 8.0"
    )
