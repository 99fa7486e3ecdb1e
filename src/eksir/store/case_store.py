"""Case bundles in a directory: open (or reuse) the case of a finding, add evidence, write documents.

Layout of `<cases-dir>/<case-id>/`:
  case.json        the case header (atomic rewrite; each version's sha256 is logged)
  events.jsonl     append-only, hash-chained log of everything that happened
  evidence/NNN-*   collected artefacts, hashed at collection (item 1 is the finding as received)
  *.md, *.json     documents (summary, triage result), each write logged with its sha256

A new case is assembled in a hidden temporary directory and renamed into place, so an interrupted run never
leaves a half case. Every later change is an atomic file write followed by a logged event.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from eksir.errors import CaseInvalidError, NotFoundError
from eksir.models.case import Case, CaseEvent, CaseStatus, EvidenceItem
from eksir.models.finding import Finding
from eksir.store.atomic import commit, sha256_bytes, stage
from eksir.store.event_log import EventLog
from eksir.store.frozen import ensure_open
from eksir.store.incident import IncidentIndex, finding_key, workload_keys
from eksir.store.lock import Lease, case_lease

CASE_FILE = "case.json"
EVENTS_FILE = "events.jsonl"
EVIDENCE_DIR = "evidence"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def current_actor() -> str:
    """Who is acting, for custody records: `user@host` of the process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def case_id_for(finding: Finding) -> str:
    """A stable case id per finding, valid as a Kubernetes label value and an AWS tag value.

    Deterministic, so triaging the same finding again lands in the same case without an index. An attack
    sequence's id comes from its sequence uid: GuardDuty updates a sequence as signals arrive.
    """
    key = f"sequence:{finding.sequence.uid}" if finding.sequence is not None else finding.arn or finding.id
    day = (finding.created_at or datetime.now(UTC)).strftime("%Y%m%d")
    return f"eksir-{day}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


_CASE_LOCKS: dict[Path, threading.Lock] = {}
_CASE_LOCKS_GUARD = threading.Lock()
_EVIDENCE_NUMBER = re.compile(r"^\.?(\d+)-")
_MAX_NUMBER_TRIES = 100


def _case_lock(path: Path) -> threading.Lock:
    """One lock per case directory in this process."""
    with _CASE_LOCKS_GUARD:
        return _CASE_LOCKS.setdefault(path.resolve(), threading.Lock())


@dataclass(frozen=True)
class CaseHandle:
    """An open case directory; every mutation goes through here so it is hashed and logged."""

    path: Path
    actor: str

    @property
    def log(self) -> EventLog:
        return EventLog(self.path / EVENTS_FILE)

    def load(self) -> Case:
        """Read case.json; raises CaseInvalidError when it is unreadable."""
        try:
            return Case.model_validate(orjson.loads((self.path / CASE_FILE).read_bytes()))
        except FileNotFoundError as exc:
            raise CaseInvalidError(f"{self.path} has no {CASE_FILE}: not a case directory") from exc
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise CaseInvalidError(f"{self.path / CASE_FILE} is not a valid case record") from exc

    def append(self, event_type: str, data: dict[str, Any] | None = None) -> CaseEvent:
        return self.log.append(event_type, self.actor, data or {})

    @contextmanager
    def writer(self, command: str, *, wait: bool = False, closed_ok: bool = False) -> Iterator[Lease]:
        """The case's one-writer lease for a whole command (store/lock.py); exit 12 while another holds it.

        A closed case refuses too (exit 12, store/frozen.py) unless the command reopens it or is one of the
        few that may touch a closed case (`closed_ok`: export, repair, close itself).
        """
        with case_lease(self.path, command, wait=wait) as lease:
            if not closed_ok:
                ensure_open(self, command)
            yield lease

    def save(self, case: Case, reason: str) -> Case:
        """Rewrite case.json write-ahead: staged, its hash logged, then renamed into place."""
        payload = _dump(case)
        pending = stage(self.path / CASE_FILE, payload)
        self.append("case.written", {"reason": reason, "sha256": sha256_bytes(payload)})
        commit(pending, self.path / CASE_FILE)
        return case

    def write_document(self, relative: str, data: bytes, kind: str) -> str:
        """Write a derived document write-ahead (staged, hash logged, renamed); returns the sha256."""
        pending = stage(self.path / relative, data)
        digest = sha256_bytes(data)
        self.append("document.written", {"path": relative, "sha256": digest, "kind": kind, "size": len(data)})
        commit(pending, self.path / relative)
        return digest

    def add_evidence(
        self, name: str, data: bytes, source: str, description: str = "", media_type: str = "application/json"
    ) -> EvidenceItem:
        """Store an artefact under evidence/, hash it, list it in the case and log its custody.

        Steps run in parallel threads and other processes may collect too: the read-number-write is serialised
        by a thread lock and the case lease (queued, it is short), and the file is created exclusively, so no
        item is lost, numbered twice or overwritten.
        """
        with _case_lock(self.path), self.writer("collect evidence", wait=True):
            return self._add_evidence(name, data, source, description, media_type)

    def _add_evidence(
        self, name: str, data: bytes, source: str, description: str, media_type: str
    ) -> EvidenceItem:
        case = self.load()
        number = self._next_evidence_number(case)
        for _ in range(_MAX_NUMBER_TRIES):
            relative = f"{EVIDENCE_DIR}/{number:03d}-{_SAFE_NAME.sub('_', name)}"
            if not (self.path / relative).exists():
                break
            number += 1
        pending = stage(self.path / relative, data)
        item = EvidenceItem(
            number=number,
            name=name,
            path=relative,
            sha256=sha256_bytes(data),
            size=len(data),
            collected_at=datetime.now(UTC),
            collected_by=self.actor,
            source=source,
            description=description,
            media_type=media_type,
        )
        self.append("evidence.collected", item.model_dump(mode="json"))
        commit(pending, self.path / relative, exclusive=True)
        self.save(case.model_copy(update={"evidence": (*case.evidence, item)}), f"evidence {number} added")
        return item

    def _next_evidence_number(self, case: Case) -> int:
        """One more than any number in use: listed in case.json, logged or on disk (a crash can leave any)."""
        used = [item.number for item in case.evidence]
        used += [int(e.data.get("number", 0)) for e in self.log.events() if e.type == "evidence.collected"]
        folder = self.path / EVIDENCE_DIR
        if folder.is_dir():
            used += [int(m.group(1)) for p in folder.iterdir() if (m := _EVIDENCE_NUMBER.match(p.name))]
        return max(used, default=0) + 1


class CaseStore:
    """The directory holding every case (`--cases-dir`, default `./cases`)."""

    def __init__(self, root: Path, actor: str | None = None) -> None:
        self.root = root
        self.actor = actor or current_actor()

    def get(self, case_ref: str) -> CaseHandle:
        """Find a case by id (under the root) or by path; raises NotFoundError."""
        candidates = [Path(case_ref), self.root / case_ref]
        for candidate in candidates:
            if (candidate / CASE_FILE).is_file():
                return CaseHandle(candidate, self.actor)
        raise NotFoundError(f"no case {case_ref!r} (looked in {self.root} and at that path)")

    def open_for_finding(
        self, finding: Finding, raw_input: bytes, input_name: str, input_info: Mapping[str, Any] | None = None
    ) -> tuple[CaseHandle, bool]:
        """Open the finding's case, creating it atomically if new. Returns (handle, created).

        `raw_input` is the finding as received (stored as evidence 1); `input_info` (input size, sha256, how
        the evidence relates to it) is recorded with it when the input held more than this finding.
        """
        case_id = case_id_for(finding)
        target = self.root / case_id
        info = dict(input_info or {})
        joined = None if (target / CASE_FILE).is_file() else self._joined_case(finding)
        if joined is not None:
            target = joined
        if (target / CASE_FILE).is_file():
            handle = CaseHandle(target, self.actor)
            ensure_open(handle, "record the finding received again")
            handle.append("finding.received-again", {"finding_id": finding.id, "input": input_name, **info})
            return handle, False
        overlap = self._overlapping_case(finding)
        if overlap is not None:
            return self._join(overlap, finding, raw_input, input_name, info), False
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{case_id}.", dir=self.root))
        try:
            self._assemble(
                CaseHandle(staging, self.actor), case_id, finding, raw_input, input_name, info=info
            )
            staging.rename(target)
            self._index(case_id, finding)
        except FileExistsError:
            shutil.rmtree(staging, ignore_errors=True)
            return self.open_for_finding(finding, raw_input, input_name, info)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if (target / CASE_FILE).is_file():
                return self.open_for_finding(finding, raw_input, input_name, info)
            raise CaseInvalidError(f"cannot create case {case_id} in {self.root}: {exc.strerror}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return CaseHandle(target, self.actor), True

    def _joined_case(self, finding: Finding) -> Path | None:
        """The case this finding joined earlier (a repeat of a joined finding is an update there)."""
        case_id = IncidentIndex(self.root).lookup("findings", finding_key(finding))
        return self.root / case_id if case_id else None

    def _overlapping_case(self, finding: Finding) -> CaseHandle | None:
        """An open case already naming one of this finding's workloads."""
        index = IncidentIndex(self.root)
        for key in workload_keys(finding):
            case_id = index.lookup("workloads", key)
            if case_id is None or not (self.root / case_id / CASE_FILE).is_file():
                continue
            handle = CaseHandle(self.root / case_id, self.actor)
            if handle.load().status is CaseStatus.OPEN:
                return handle
            index.release("workloads", key)
        return None

    def _join(
        self, handle: CaseHandle, finding: Finding, raw_input: bytes, input_name: str, info: dict[str, Any]
    ) -> CaseHandle:
        """Add a finding naming an open case's workload to that case, on the record (`case.joined`)."""
        case_id = handle.path.name
        keys = workload_keys(finding)
        with _case_lock(handle.path), handle.writer("join finding to case", wait=True):
            handle.append(
                "case.joined",
                {
                    "finding_id": finding.id,
                    "finding_type": finding.type,
                    "workloads": keys,
                    "input": input_name,
                    **info,
                },
            )
        handle.add_evidence(
            f"finding-joined-{finding.id}.json",
            raw_input,
            source=input_name,
            description=f"GuardDuty finding {finding.id} ({finding.type}), joined: it names a workload here.",
        )
        self._index(case_id, finding)
        return handle

    def _index(self, case_id: str, finding: Finding) -> None:
        index = IncidentIndex(self.root)
        index.claim("findings", finding_key(finding), case_id)
        for key in workload_keys(finding):
            index.claim("workloads", key, case_id)

    def _assemble(
        self,
        handle: CaseHandle,
        case_id: str,
        finding: Finding,
        raw_input: bytes,
        input_name: str,
        *,
        info: dict[str, Any],
    ) -> None:
        case = Case(
            id=case_id,
            opened_at=datetime.now(UTC),
            opened_by=self.actor,
            finding_id=finding.id,
            finding_arn=finding.arn,
            finding_type=finding.type,
            cluster_name=finding.cluster.name if finding.cluster else None,
            account_id=finding.account_id,
            region=finding.region,
            title=finding.title or finding.type,
        )
        handle.append(
            "case.opened",
            {
                "case_id": case_id,
                "finding_id": finding.id,
                "input": input_name,
                "workloads": workload_keys(finding),
                **info,
            },
        )
        handle.save(case, "case opened")
        handle.add_evidence(
            "finding-as-received.json",
            raw_input,
            source=input_name,
            description=str(
                info.get("evidence")
                or "The GuardDuty finding exactly as received (every byte), before any parsing."
            ),
        )


def _dump(model: Case) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
