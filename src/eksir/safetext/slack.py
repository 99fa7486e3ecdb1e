"""Escaping for Slack `mrkdwn` (war-room webhook messages) that may carry attacker-chosen text.

Slack reads `<...>` as links, user and channel mentions (`<https://evil|Approve here>`, `<!channel>`), and
`&` starts an entity; its documented escaping is `&amp;`, `&lt;`, `&gt;` for exactly these three. With them
escaped, a pod name or an error detail shows as text and can neither ping the channel nor hide a link.
"""

from __future__ import annotations

_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def mrkdwn_escape(text: str) -> str:
    """`text` with Slack's control characters escaped; everything else unchanged."""
    return "".join(_SLACK_ENTITIES.get(char, char) for char in text)
