"""Read GuardDuty findings from a path, stdin, bytes or a binary stream, in any representation.

This is the entry point the CLI and the playbooks use. It owns the order of the pipeline: bytes ->
(gzip) -> JSON or JSON Lines -> envelopes -> canonical wire keys (botocore model) -> `Finding`. All
failures surface as `EksirError` subclasses with one-line messages naming the input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from eksir.errors import BadInputError
from eksir.findings.asff import asff_to_wire
from eksir.findings.decode import parse_document
from eksir.findings.envelopes import unwrap
from eksir.findings.normalise import build_finding
from eksir.findings.shapes import finding_plan, to_wire
from eksir.models.finding import Finding, SourceFormat

STDIN = "-"


def read_findings(source: str | Path | bytes | IO[bytes], *, name: str | None = None) -> list[Finding]:
    """Every finding in `source`: a path (str or Path), raw bytes, or a binary stream.

    Raises `BadInputError` (unreadable, empty, not JSON), `NotAFindingError` (JSON but no finding).
    Findings of every type are returned; use `require_handled` to insist on the handled ones.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _parse(bytes(source), name or "<input>")
    if isinstance(source, str | Path):
        return _parse(_read_path(Path(source)), name or str(source))
    label = name or str(getattr(source, "name", "<stream>"))
    try:
        data = source.read()
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{label}: cannot read ({exc})") from None
    if not isinstance(data, bytes):
        raise BadInputError(f"{label}: expected a binary stream, got {type(data).__name__}")
    return _parse(data, label)


def read_findings_from_path(path_or_dash: str) -> list[Finding]:
    """Like `read_findings` for a CLI argument: `-` reads standard input."""
    if path_or_dash == STDIN:
        return read_findings(sys.stdin.buffer, name="<stdin>")
    return read_findings(Path(path_or_dash), name=path_or_dash)


def _read_path(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{path}: is a directory; give a finding file") from None
    except PermissionError:
        raise BadInputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse(data: bytes, name: str) -> list[Finding]:
    plan = finding_plan()
    findings: list[Finding] = []
    for record in unwrap(parse_document(data, name)):
        raw: dict[str, Any] = record.finding
        if record.source is SourceFormat.ASFF:
            raw = asff_to_wire(raw)
        wire = to_wire(raw, plan)
        findings.append(build_finding(wire, record.source, record.where))
    return findings
