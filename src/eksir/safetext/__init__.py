"""Text from findings, logs and APIs shown to people: in a terminal as text (never rich markup), in
Markdown escaped (never raw HTML or Markdown syntax).

Why one package: a pod name, an image, a user agent or an S3 key is chosen by the attacker. Rendered as rich
markup, `alpine:3.20[/oops]` crashed `eksir triage` and `[green]ok: verified[/]` drew a fake row; rendered
into report.md, `<img onerror=...>` ran in a review tool. Every view goes through these helpers.
"""

from eksir.safetext.markdown import md_escape
from eksir.safetext.slack import mrkdwn_escape
from eksir.safetext.terminal import cells, line, plain_console, styled

__all__ = ["cells", "line", "md_escape", "mrkdwn_escape", "plain_console", "styled"]
