"""Slack mrkdwn escaping: only Slack's three control characters change."""

from __future__ import annotations

from eksir.safetext import mrkdwn_escape


def test_links_mentions_and_entities_are_escaped_and_other_text_is_kept() -> None:
    assert mrkdwn_escape("<@U1> <!here> a&b *x* _y_") == "&lt;@U1&gt; &lt;!here&gt; a&amp;b *x* _y_"
