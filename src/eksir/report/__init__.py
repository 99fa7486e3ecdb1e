"""The incident report, built only from the case record: Markdown, self-contained HTML, and JSON.

`generate_report(handle, formats)` loads the case (checking every input against its logged hash), builds
one Report and writes each requested format back into the case with `write_document`, so the report itself
is hashed, logged and covered by `eksir case verify` and the signed export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from eksir.errors import BadInputError
from eksir.report.build import build_report
from eksir.report.html import render_html
from eksir.report.markdown import render_markdown
from eksir.report.model import Report
from eksir.store.case_store import CaseHandle
from eksir.store.record import REPORT_FILES, REPORT_KIND, load_record

FORMATS = tuple(REPORT_FILES)


@dataclass(frozen=True)
class WrittenReport:
    format: str
    path: str
    sha256: str


def render(report: Report, fmt: str) -> bytes:
    """The bytes of one format; raises BadInputError for an unknown format."""
    if fmt == "md":
        return render_markdown(report).encode()
    if fmt == "html":
        return render_html(report).encode()
    if fmt == "json":
        return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2)
    raise BadInputError(f"unknown report format {fmt!r} (choose from {', '.join(FORMATS)})")


def generate_report(
    handle: CaseHandle, formats: Iterable[str] = FORMATS, now: datetime | None = None
) -> tuple[Report, list[WrittenReport]]:
    """Build the report from the case and write each format into it; returns the report and what was written.

    Raises CaseInvalidError when the event chain or a document the report reads fails its hash check.
    """
    wanted = list(dict.fromkeys(formats))
    for fmt in wanted:
        if fmt not in REPORT_FILES:
            raise BadInputError(f"unknown report format {fmt!r} (choose from {', '.join(FORMATS)})")
    report = build_report(load_record(handle), now or datetime.now(UTC))
    written = []
    for fmt in wanted:
        relative = REPORT_FILES[fmt]
        digest = handle.write_document(relative, render(report, fmt), f"{REPORT_KIND}-{fmt}")
        written.append(WrittenReport(fmt, relative, digest))
    return report, written


__all__ = ["FORMATS", "Report", "WrittenReport", "generate_report", "render"]
