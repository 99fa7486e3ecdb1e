"""Read GuardDuty findings from a path, stdin, bytes or a binary stream, in any representation.

This is the entry point the CLI and the playbooks use. It owns the order of the pipeline: bytes ->
(gzip) -> JSON or JSON Lines -> envelopes -> canonical wire keys (botocore model) -> `Finding`. All
failures surface as `EksirError` subclasses with one-line messages naming the input.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from eksir.errors import BadInputError
from eksir.findings.asff import asff_to_wire
from eksir.findings.decode import one_line, parse_document
from eksir.findings.envelopes import unwrap
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES, read_bounded
from eksir.findings.normalise import build_finding
from eksir.findings.shapes import finding_plan, is_wire_top_level, to_wire
from eksir.models.finding import Finding, SourceFormat

STDIN = "-"


def read_findings(
    source: str | Path | bytes | IO[bytes],
    *,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> list[Finding]:
    """Every finding in `source`: a path (str or Path), raw bytes, or a binary stream.

    At most `max_bytes` are read, and gzip input is inflated to at most `max_bytes` (see `limits`).
    Raises `BadInputError` (unreadable, empty, not JSON, too large), `NotAFindingError` (JSON but no
    finding). Findings of every type are returned; use `require_handled` to insist on the handled ones.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _parse(bytes(source), one_line(name or "<input>"), max_bytes)
    if isinstance(source, str | Path):
        label = one_line(name or str(source))
        return _parse(_read_path(Path(source), label, max_bytes), label, max_bytes)
    label = one_line(name or str(getattr(source, "name", "<stream>")))
    try:
        data = read_bounded(source, label, max_bytes)
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{label}: cannot read ({exc})") from None
    except TypeError:
        raise BadInputError(f"{label}: expected a binary stream") from None
    return _parse(data, label, max_bytes)


def read_findings_from_path(path_or_dash: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> list[Finding]:
    """Like `read_findings` for a CLI argument: `-` reads standard input."""
    if path_or_dash == STDIN:
        return read_findings(sys.stdin.buffer, name="<stdin>", max_bytes=max_bytes)
    return read_findings(Path(path_or_dash), name=path_or_dash, max_bytes=max_bytes)


def _read_path(path: Path, label: str, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as stream:
            return read_bounded(stream, label, max_bytes)
    except FileNotFoundError:
        raise BadInputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{label}: is a directory; give a finding file") from None
    except PermissionError:
        raise BadInputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise BadInputError(f"{label}: cannot read ({exc.strerror or exc})") from None


def iter_findings(
    data: bytes, *, name: str | None = None, max_bytes: int = DEFAULT_MAX_INPUT_BYTES
) -> Iterator[Finding]:
    """Every finding in `data`, one at a time: a JSON Lines export is turned into findings line by line.

    `read_findings` is this made into a list. A caller that handles each finding and lets it go (bulk
    triage with JSON Lines output) holds one finding at a time instead of all of them. The errors are
    `read_findings`'s, raised when the iteration reaches the bad line (findings before it were yielded);
    gzip input is inflated to at most `max_bytes`.
    """
    return _iter(data, one_line(name or "<input>"), max_bytes)


def _parse(data: bytes, name: str, max_bytes: int) -> list[Finding]:
    return list(_iter(data, name, max_bytes))


def _iter(data: bytes, name: str, max_bytes: int) -> Iterator[Finding]:
    plan = finding_plan()
    # Parsing creates millions of acyclic objects; the cyclic GC would rescan the growing heap over and over
    # (it halved throughput on a 100,000-finding export). Nothing built here forms a cycle.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for record in unwrap(parse_document(data, name, max_bytes)):
            raw: dict[str, Any] = record.finding
            if record.source is SourceFormat.ASFF:  # always walked: its values are strings to coerce
                wire = to_wire(asff_to_wire(raw), plan)
            else:
                wire = raw if is_wire_top_level(raw, plan) else to_wire(raw, plan)
            # The line's text is the wire finding itself when nothing was re-keyed: keep that, not the dict.
            text = record.text if wire is raw else None
            yield build_finding(wire, record.source, record.where, text)
    finally:
        if gc_was_enabled:
            gc.enable()
