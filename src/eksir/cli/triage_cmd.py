"""`eksir triage FILE`: read a finding in any AWS form, judge it, and open (or reuse) its case.

`--output json` prints one finding as an indented object and several as JSON Lines (one compact object
per line), written as they are judged; with `--no-case` a large export is streamed and judged on every
core (`cli.triage_stream`, `cli.triage_parallel`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console

from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    CasesDirOption,
    MaxInputOption,
    OutputFormat,
    OutputOption,
    WaitOption,
)
from eksir.cli.triage_parallel import judged_stream
from eksir.cli.triage_stream import Judged, SkipReporter, write_documents
from eksir.cli.triage_view import render_triage
from eksir.errors import BadInputError, EksirError
from eksir.findings import read_findings, require_handled
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES, bounded_stream, read_bounded
from eksir.models.finding import Finding
from eksir.safetext import plain_console
from eksir.store import CaseHandle, CaseStore
from eksir.triage import TriageConfig, load_triage_config, triage_finding
from eksir.triage.document import summary_markdown, triage_document
from eksir.triage.joined import case_verdict, document_names
from eksir.triage.verdict import Verdict


def read_input_bytes(source: str, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> tuple[bytes, str]:
    """Read the raw bytes (kept as evidence exactly as received) from a path or `-` for stdin.

    At most `max_bytes` (BadInputError beyond: a file or pipe must not exhaust memory before parsing).
    """
    stream, name = open_input(source)
    with _closing(stream):
        try:
            return read_bounded(stream, name, max_bytes), name
        except OSError as exc:
            raise BadInputError(f"cannot read {name}: {exc.strerror or exc}") from exc


def _closing(stream: IO[bytes]) -> AbstractContextManager[IO[bytes]]:
    """Close an opened file after use, never standard input (other code of this process may read it)."""
    return nullcontext(stream) if stream is sys.stdin.buffer else closing(stream)


def open_input(source: str) -> tuple[IO[bytes], str]:
    """The input as a binary stream (a path, or `-` for stdin) and its name; BadInputError if unopenable."""
    if source == "-":
        return sys.stdin.buffer, "<stdin>"
    path = Path(source)
    try:
        return path.open("rb"), str(path)
    except IsADirectoryError as exc:
        raise BadInputError(f"{path} is a directory, not a finding file") from exc
    except FileNotFoundError as exc:
        raise BadInputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def handled_findings(findings: list[Finding], stderr: Console) -> list[Finding]:
    """Keep the findings this playbook handles; if none, raise the error of the first one (the same policy,
    and the same messages, as the streamed path: `SkipReporter`)."""
    skips = SkipReporter(stderr)
    kept: list[Finding] = []
    for finding in findings:
        try:
            handled = require_handled([finding])
        except EksirError as exc:
            skips.record(0, [exc])
            continue
        kept.extend(handled)
        skips.record(len(handled), [])
    skips.finish()
    return kept


def finding_evidence(
    finding: Finding, raw: bytes, input_name: str, count: int
) -> tuple[bytes, dict[str, Any]]:
    """What a case keeps as the finding as received, and what it records about the input.

    One finding: the whole input, every byte. Several (an S3 export, a get-findings page): only this
    finding's own element, plus the input's name, size and sha256, so the input can be matched later. Storing
    the whole input in every case made 100 findings cost 100 copies of all 100 (quadratic).
    """
    if count <= 1:
        return raw, {}
    element, exact = finding.raw.as_json()
    digest = hashlib.sha256(raw).hexdigest()
    how = "its line, every byte" if exact else "its object, re-serialised as JSON (same content)"
    info = {
        "input_size": len(raw),
        "input_sha256": digest,
        "input_findings": count,
        "evidence": f"This finding's own element of {input_name} ({how}); the input held {count} findings, "
        f"{len(raw)} bytes, sha256 {digest}.",
    }
    return element, info


def triage_one(
    finding: Finding,
    config: TriageConfig,
    store: CaseStore | None,
    raw: bytes,
    input_name: str,
    *,
    count: int = 1,
    wait: bool = False,
) -> dict[str, Any]:
    """Judge one finding and, with a store, record the verdict in its (new or existing) case.

    `count` is how many findings the input held (see `finding_evidence`).
    """
    verdict = triage_finding(finding, config)
    if store is None:
        return triage_document(finding, verdict, None, None)
    evidence, info = finding_evidence(finding, raw, input_name, count)
    handle, created = store.open_for_finding(finding, evidence, input_name, info)
    with handle.writer("eksir triage", wait=wait):
        return _record_triage(handle, created, finding, verdict)


def _record_triage(handle: CaseHandle, created: bool, finding: Finding, verdict: Verdict) -> dict[str, Any]:
    """Write the triage documents and the verdict into the case (under its writer lease)."""
    case = handle.load()
    document = triage_document(finding, verdict, case.id, str(handle.path))
    finding_doc, triage_doc, summary_doc, kind = document_names(finding, case.finding_id)
    handle.write_document(
        finding_doc,
        orjson.dumps(finding.model_dump(mode="json", exclude={"raw"}), option=orjson.OPT_INDENT_2),
        kind,
    )
    handle.write_document(triage_doc, orjson.dumps(document, option=orjson.OPT_INDENT_2), "triage")
    handle.write_document(summary_doc, summary_markdown(document).encode(), "summary")
    handle.append("triage.completed", {"decision": verdict.decision.value, "reasons": list(verdict.reasons)})
    decided = case_verdict(case.verdict, verdict.decision.value, finding.id != case.finding_id)
    if case.verdict != decided:
        handle.save(case.model_copy(update={"verdict": decided}), "verdict recorded")
    document["case"]["created"] = created
    return document


def triage(  # noqa: PLR0917 - typer maps parameters to options
    finding_file: Annotated[str, typer.Argument(help="finding file (JSON, JSON lines, gzip) or - for stdin")],
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", envvar="EKSIR_TRIAGE_CONFIG", help="triage config YAML")
    ] = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    no_case: Annotated[
        bool, typer.Option("--no-case", help="judge only; do not open or touch a case")
    ] = False,
    output: OutputOption = OutputFormat.TABLE,
    max_input_bytes: MaxInputOption = DEFAULT_MAX_INPUT_BYTES,
    wait: WaitOption = False,
) -> None:
    """Read a GuardDuty finding in any form AWS emits, triage it, and open (or reuse) its case."""
    stderr = plain_console(stderr=True, soft_wrap=True)
    config = load_triage_config(config_file)
    if no_case and output is OutputFormat.JSON:  # bulk triage: streamed, on every core (cli.triage_parallel)
        stream, name = open_input(finding_file)
        with _closing(stream):
            bounded = bounded_stream(stream, name, max_input_bytes)
            _write_json(judged_stream(bounded, config, max_input_bytes), stderr)
        return
    raw, input_name = read_input_bytes(finding_file, max_input_bytes)
    everything = read_findings(raw, max_bytes=max_input_bytes)
    findings = handled_findings(everything, stderr)
    store = None if no_case else CaseStore(cases_dir)
    count = len(everything)
    documents = (
        triage_one(finding, config, store, raw, input_name, count=count, wait=wait) for finding in findings
    )
    if output is OutputFormat.JSON:
        lines = (Judged([orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)]) for document in documents)
        _write_json(lines, stderr)
        return
    console = plain_console()
    for document in documents:
        render_triage(console, document)


def _write_json(batches: Iterable[Judged], stderr: Console) -> None:
    """One finding: the indented object; several: JSON Lines (see `cli.triage_stream`)."""
    sys.stdout.flush()
    write_documents(batches, SkipReporter(stderr), sys.stdout.buffer)


def register(app: typer.Typer) -> None:
    app.command("triage")(triage)
