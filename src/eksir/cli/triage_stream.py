"""Bulk triage output: each finding judged and written as it is read, and JSON Lines for several findings.

Why: `eksir triage export.jsonl --no-case --output json` over a 100,000-finding S3 export (285 MB) held every
`Finding`, every triage document and one indented array of all of them before printing a byte: 24 s and a
3 GB peak. Here a finding becomes one compact JSON line (`JudgedLine`) as soon as it is read and is then
let go, so memory does not grow with the number of findings; one finding still prints as the indented
object it always was (the writer holds the first line until it knows whether a second one follows).

Skipped findings (a type this playbook does not handle) are reported on stderr as before, once a finding
was kept; when none is kept, the first one's error is raised and nothing is printed, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

import orjson
from rich.console import Console

from eksir.errors import BadInputError, EksirError
from eksir.findings import iter_findings, require_handled
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES
from eksir.triage import TriageConfig, triage_finding
from eksir.triage.document import triage_document

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_FLUSH_BYTES = 1 << 20


@dataclass
class Judged:
    """What a run of the pipeline made of some findings: the kept ones' JSON lines and the skipped ones."""

    lines: list[bytes] = field(default_factory=list)
    skipped: list[EksirError] = field(default_factory=list)


def judge(
    data: bytes,
    name: str | None,
    config: TriageConfig,
    *,
    batch: int = 256,
    max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> Iterator[Judged]:
    """Triage every finding of `data` in order, yielding batches of compact JSON lines and skip errors.

    Raises what the reader raises (bad JSON, not a finding) when the iteration reaches it, after yielding
    the findings judged before it.
    """
    judged = Judged()
    try:
        for finding in iter_findings(data, name=name, max_bytes=max_bytes):
            try:
                require_handled([finding])
            except EksirError as exc:
                judged.skipped.append(exc)
                continue
            document = triage_document(finding, triage_finding(finding, config), None, None)
            judged.lines.append(orjson.dumps(document, option=_JSON_OPTIONS))
            if len(judged.lines) >= batch:
                yield judged
                judged = Judged()
    except EksirError:
        yield judged  # the findings before the bad one are written, as a line-by-line reader would
        raise
    yield judged


class SkipReporter:
    """Prints skip messages once a finding was kept; raises the first skip error when none was kept."""

    def __init__(self, stderr: Console) -> None:
        self._stderr = stderr
        self._pending: list[EksirError] = []
        self.kept = 0

    def add(self, judged: Judged) -> None:
        self.record(len(judged.lines), judged.skipped)

    def record(self, kept: int, skipped: list[EksirError]) -> None:
        """`kept` findings were handled and `skipped` were not: print the skips once anything was kept."""
        self.kept += kept
        self._pending.extend(skipped)
        if self.kept:
            for error in self._pending:
                self._stderr.print(f"eksir: skipped: {error.message}", markup=False)
            self._pending.clear()

    def finish(self) -> None:
        if not self.kept:
            if self._pending:
                raise self._pending[0]
            raise BadInputError("the input holds no findings")


def write_documents(batches: Iterable[Judged], skips: SkipReporter, out: IO[bytes]) -> None:
    """One finding: the indented object; several: JSON Lines, one compact document per line, as they come.

    When the input turns out bad part-way (a broken line), the findings judged before it are written as
    JSON Lines and the reader's error is raised (exit code 3 for bad JSON, as before).
    """
    held: bytes | None = None  # the first line, until a second one shows that it is not alone
    several = False
    buffer = bytearray()
    try:
        for judged in batches:
            skips.add(judged)
            for line in judged.lines:
                if several:
                    buffer += line + b"\n"
                elif held is None:
                    held = line
                else:
                    buffer += held + b"\n" + line + b"\n"
                    several = True
            if len(buffer) >= _FLUSH_BYTES:
                out.write(buffer)
                buffer.clear()
    except EksirError:  # a bad line: what was judged before it is written, one line each, then the error
        out.write(buffer + (held + b"\n" if held is not None and not several else b""))
        out.flush()
        raise
    skips.finish()
    if held is not None and not several:
        buffer += orjson.dumps(orjson.loads(held), option=_JSON_OPTIONS | orjson.OPT_INDENT_2) + b"\n"
    out.write(buffer)
    out.flush()
