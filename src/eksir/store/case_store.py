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
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from eksir.errors import CaseInvalidError, NotFoundError
from eksir.models.case import Case, CaseEvent, CaseStatus, EvidenceItem
from eksir.models.finding import Finding
from eksir.store.atomic import commit, sha256_bytes, stage
from eksir.store.event_log import EventLog
from eksir.store.frozen import ensure_open
from eksir.store.incident import IncidentIndex, finding_key, workload_keys
from eksir.store.lock import Lease, case_lease
from eksir.store.repeats import record_repeat
from eksir.store.s3_location import S3Location, check_case_id, is_s3, parse_s3, split_case_url

if TYPE_CHECKING:
    from eksir.store.s3_case import RemoteCase
    from eksir.store.s3_store import S3Backend, S3IncidentIndex

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
CLAIM_WAIT_S = 30.0
"""How long a finding waits for the case that claimed its workload first to be created (its opener is
another worker, possibly writing to S3) before taking the claim over."""


def _case_lock(path: Path) -> threading.Lock:
    """One lock per case directory in this process."""
    with _CASE_LOCKS_GUARD:
        return _CASE_LOCKS.setdefault(path.resolve(), threading.Lock())


def _claim_holder(index: IncidentIndex | S3IncidentIndex, key: str) -> str | None:
    """Who holds a workload claim that was just refused: a claim is created, then written, so a reader
    may see it empty for a moment; None when it stays unreadable (then it is taken over)."""
    for _ in range(20):
        holder = index.lookup("workloads", key)
        if holder is not None:
            return holder
        time.sleep(0.05)
    return None


@dataclass(frozen=True)
class CaseHandle:
    """An open case directory; every mutation goes through here so it is hashed and logged."""

    path: Path
    actor: str
    remote: RemoteCase | None = None
    """A shared (S3) case: `path` is its local copy and every write goes to S3 first (store/s3_case.py)."""

    @property
    def log(self) -> EventLog:
        return EventLog(self.path / EVENTS_FILE, self.remote)

    @property
    def case_id(self) -> str:
        return self.remote.record.case_id if self.remote is not None else self.path.name

    def _upload(self, data: bytes) -> None:
        """Write-ahead on a shared store: the bytes are in S3 before the event that logs them."""
        if self.remote is not None:
            self.remote.upload(data)

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
        remote = self.remote
        lock, key = (remote.new_lock(), remote.lease_key) if remote is not None else (None, None)
        with case_lease(self.path, command, wait=wait, lock=lock, key=key) as lease:
            if remote is not None:
                remote.refresh()
            if not closed_ok:
                ensure_open(self, command)
            yield lease

    def save(self, case: Case, reason: str) -> Case:
        """Rewrite case.json write-ahead: staged, its hash logged, then renamed into place."""
        payload = _dump(case)
        pending = stage(self.path / CASE_FILE, payload)
        self._upload(payload)
        self.append("case.written", {"reason": reason, "sha256": sha256_bytes(payload)})
        commit(pending, self.path / CASE_FILE)
        return case

    def write_document(self, relative: str, data: bytes, kind: str) -> str:
        """Write a derived document write-ahead (staged, hash logged, renamed); returns the sha256."""
        pending = stage(self.path / relative, data)
        digest = sha256_bytes(data)
        self._upload(data)
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
        self.list_logged_evidence(self.log.events())
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
        self._upload(data)
        self.append("evidence.collected", item.model_dump(mode="json"))
        commit(pending, self.path / relative, exclusive=True)
        self.save(case.model_copy(update={"evidence": (*case.evidence, item)}), f"evidence {number} added")
        return item

    def list_logged_evidence(self, events: Iterable[CaseEvent]) -> list[EvidenceItem]:
        """List in case.json, on the record (`repair.evidence-listed`), the evidence the log says was
        collected but case.json lacks: a writer killed between the two writes leaves that (in fleet mode, a
        worker killed while opening a case, which another worker then resumes). Returns what it listed.

        Called under the writer lease by `eksir case repair` and before each evidence addition, so a case
        resumed by the next writer verifies again without a person running repair."""
        case = self.load()
        listed = {item.path for item in case.evidence}
        missing = [
            EvidenceItem.model_validate(e.data)
            for e in events
            if e.type == "evidence.collected" and e.data.get("path") not in listed
        ]
        if not missing:
            return []
        for item in missing:
            self.append("repair.evidence-listed", {"number": item.number, "path": item.path})
        evidence = tuple(sorted((*case.evidence, *missing), key=lambda item: item.number))
        self.save(case.model_copy(update={"evidence": evidence}), "repair: logged evidence listed")
        return missing

    def _next_evidence_number(self, case: Case) -> int:
        """One more than any number in use: listed in case.json, logged or on disk (a crash can leave any)."""
        used = [item.number for item in case.evidence]
        used += [int(e.data.get("number", 0)) for e in self.log.events() if e.type == "evidence.collected"]
        folder = self.path / EVIDENCE_DIR
        if folder.is_dir():
            used += [int(m.group(1)) for p in folder.iterdir() if (m := _EVIDENCE_NUMBER.match(p.name))]
        return max(used, default=0) + 1


class CaseStore:
    """Where every case lives (`--cases-dir`, default `./cases`): a directory, or `s3://bucket/prefix` with a
    DynamoDB lease table (store/s3_store.py), whose handles work on a local copy of each S3 case."""

    def __init__(self, root: Path | str, actor: str | None = None, *, lock_table: str | None = None) -> None:
        self.actor = actor or current_actor()
        self.lock_table = lock_table
        self.backend: S3Backend | None = None
        if is_s3(root):
            self.backend = _backend_for(parse_s3(root), lock_table)
            self.root = self.backend.cache_root
        else:
            self.root = Path(root)

    def get(self, case_ref: str) -> CaseHandle:
        """Find a case by id (under the root), by path or by `s3://bucket/prefix/CASE`; raises NotFoundError
        (BadInputError for a malformed S3 reference)."""
        if is_s3(case_ref):
            location, case_id = split_case_url(case_ref)
            backend = self.backend
            if backend is None or backend.location != location:
                backend = _backend_for(location, self.lock_table)
            return self._remote_handle(backend, case_id)
        if self.backend is not None:
            return self._remote_handle(self.backend, case_ref)
        candidates = [Path(case_ref), self.root / case_ref]
        for candidate in candidates:
            if (candidate / CASE_FILE).is_file():
                return CaseHandle(candidate, self.actor)
        raise NotFoundError(f"no case {case_ref!r} (looked in {self.root} and at that path)")

    def _remote_handle(self, backend: S3Backend, case_ref: str) -> CaseHandle:
        remote = backend.open(check_case_id(case_ref))
        if remote is None:
            raise NotFoundError(f"no case {case_ref!r} in {backend.location.url}")
        return CaseHandle(remote.case_dir, self.actor, remote)

    def _existing(self, case_id: str) -> CaseHandle | None:
        """The case `case_id` when it exists (an S3 case materialised), else None."""
        if self.backend is not None:
            remote = self.backend.open(case_id)
            return CaseHandle(remote.case_dir, self.actor, remote) if remote is not None else None
        target = self.root / case_id
        return CaseHandle(target, self.actor) if (target / CASE_FILE).is_file() else None

    def _incidents(self) -> IncidentIndex | S3IncidentIndex:
        if self.backend is None:
            return IncidentIndex(self.root)
        from eksir.store.s3_store import S3IncidentIndex  # noqa: PLC0415 - see _backend_for

        return S3IncidentIndex(self.backend)

    def open_for_finding(
        self, finding: Finding, raw_input: bytes, input_name: str, input_info: Mapping[str, Any] | None = None
    ) -> tuple[CaseHandle, bool]:
        """Open the finding's case, creating it atomically if new. Returns (handle, created).

        `raw_input` is the finding as received (stored as evidence 1); `input_info` (input size, sha256, how
        the evidence relates to it) is recorded with it when the input held more than this finding.
        """
        case_id = case_id_for(finding)
        info = dict(input_info or {})
        handle = self._existing(case_id)
        if handle is None and (joined := self._joined_case(finding)) is not None:
            handle = self._existing(joined)
        if handle is not None:
            self._complete(handle, finding, raw_input, input_name, info)
            ensure_open(handle, "record the finding received again")
            record_repeat(handle, finding, raw_input, input_name, info)
            return handle, False
        overlap = self._overlapping_case(finding) or self._claimed_first(case_id, finding)
        if overlap is not None:
            return self._join(overlap, finding, raw_input, input_name, info), False
        try:
            if self.backend is not None:
                return self._create_remote(self.backend, case_id, finding, raw_input, input_name, info)
            return self._create(case_id, finding, raw_input, input_name, info)
        except BaseException:
            self._release_claims(case_id, finding)
            raise

    def _release_claims(self, case_id: str, finding: Finding) -> None:
        """A case that could not be created gives back the workloads claimed for it (if it does not exist)."""
        if self._existing(case_id) is not None:
            return
        index = self._incidents()
        for key in workload_keys(finding):
            if index.lookup("workloads", key) == case_id:
                index.release("workloads", key)

    def _create(
        self, case_id: str, finding: Finding, raw_input: bytes, input_name: str, info: dict[str, Any]
    ) -> tuple[CaseHandle, bool]:
        """A new case directory: assembled hidden, then renamed into place (never half a case)."""
        target = self.root / case_id
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

    def _create_remote(  # noqa: PLR0917 - the finding as received, with its provenance
        self,
        backend: S3Backend,
        case_id: str,
        finding: Finding,
        raw_input: bytes,
        input_name: str,
        info: dict[str, Any],
    ) -> tuple[CaseHandle, bool]:
        """A new S3 case, under its lease from the first event on: writing event 1 conditionally is the
        claim (another worker's event 1 wins: its case is then opened instead); a concurrent opener waits
        on the lease until the case is whole, and completes it if this process dies (`_complete`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{case_id}.", dir=self.root))
        remote = backend.remote(case_id, staging)
        try:
            with case_lease(staging, "open case", wait=True, lock=remote.new_lock(), key=remote.lease_key):
                handle = CaseHandle(staging, self.actor, remote)
                self._assemble(handle, case_id, finding, raw_input, input_name, info=info)
        except FileExistsError:
            shutil.rmtree(staging, ignore_errors=True)
            return self.open_for_finding(finding, raw_input, input_name, info)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            staging.rename(self.root / case_id)
        except OSError:  # a copy made meanwhile by another process here: bring it up to date instead
            shutil.rmtree(staging, ignore_errors=True)
        final = backend.remote(case_id)
        from eksir.store.s3_case import materialise  # noqa: PLC0415 - see _backend_for

        materialise(final)
        self._index(case_id, finding)
        return CaseHandle(final.case_dir, self.actor, final), True

    def _complete(
        self, handle: CaseHandle, finding: Finding, raw_input: bytes, input_name: str, info: dict[str, Any]
    ) -> None:
        """An S3 case whose opener has not finished (or died) after its first event: wait for the opener's
        lease, then finish the opening from this finding when it is still unfinished."""
        if handle.remote is None or (handle.path / CASE_FILE).is_file():
            return
        with handle.writer("complete the opening of the case", wait=True, closed_ok=True):
            if (handle.path / CASE_FILE).is_file():
                return
            case_id = handle.case_id
            handle.save(self._new_case(case_id, finding), "case opened (completed: its opener stopped)")
            self._first_evidence(handle, raw_input, input_name, info)
            self._index(case_id, finding)

    def _joined_case(self, finding: Finding) -> str | None:
        """The case this finding joined earlier (a repeat of a joined finding is an update there)."""
        return self._incidents().lookup("findings", finding_key(finding))

    def _overlapping_case(self, finding: Finding) -> CaseHandle | None:
        """An open case already naming one of this finding's workloads."""
        index = self._incidents()
        for key in workload_keys(finding):
            case_id = index.lookup("workloads", key)
            handle = self._existing(case_id) if case_id is not None else None
            if handle is None or not (handle.path / CASE_FILE).is_file():
                continue
            if handle.load().status is CaseStatus.OPEN:
                return handle
            index.release("workloads", key)
        return None

    def _claimed_first(self, case_id: str, finding: Finding) -> CaseHandle | None:
        """Claim the finding's workloads for the case about to be created, before it is: two findings about
        one pod arriving at two workers at once must give one case, and a claim made only after creating
        (as before) let both create. Returns the case to join when another case holds a workload: an open
        case, waited for while its opener finishes creating it. A claim whose case never appears (its
        opener died) or is closed is taken over."""
        index = self._incidents()
        mine: list[str] = []
        for key in workload_keys(finding):
            if index.claim("workloads", key, case_id):
                mine.append(key)
                continue
            holder = _claim_holder(index, key)
            if holder == case_id:
                continue
            handle = self._await_case(holder) if holder is not None else None
            if handle is not None and handle.load().status is CaseStatus.OPEN:
                for claimed in mine:  # this finding joins: its case will not exist
                    index.release("workloads", claimed)
                return handle
            index.release("workloads", key)
            index.claim("workloads", key, case_id)
        return None

    def _await_case(self, case_id: str) -> CaseHandle | None:
        """The case `case_id` once its opener has written case.json, or None after CLAIM_WAIT_S."""
        deadline = time.monotonic() + CLAIM_WAIT_S
        while True:
            handle = self._existing(case_id)
            if handle is not None and (handle.path / CASE_FILE).is_file():
                return handle
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def _join(
        self, handle: CaseHandle, finding: Finding, raw_input: bytes, input_name: str, info: dict[str, Any]
    ) -> CaseHandle:
        """Add a finding naming an open case's workload to that case, on the record (`case.joined`)."""
        case_id = handle.case_id
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
        index = self._incidents()
        index.claim("findings", finding_key(finding), case_id)
        for key in workload_keys(finding):
            index.claim("workloads", key, case_id)

    def _new_case(self, case_id: str, finding: Finding) -> Case:
        return Case(
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
        handle.save(self._new_case(case_id, finding), "case opened")
        self._first_evidence(handle, raw_input, input_name, info)

    @staticmethod
    def _first_evidence(handle: CaseHandle, raw_input: bytes, input_name: str, info: dict[str, Any]) -> None:
        handle.add_evidence(
            "finding-as-received.json",
            raw_input,
            source=input_name,
            description=str(
                info.get("evidence")
                or "The GuardDuty finding exactly as received (every byte), before any parsing."
            ),
        )


def _backend_for(location: S3Location, table: str | None) -> S3Backend:
    """The S3 store's backend, imported only for an S3 store: a directory store (and triage without a case)
    loads none of the AWS client layer."""
    from eksir.store.s3_store import backend_for  # noqa: PLC0415

    return backend_for(location, table)


def _dump(model: Case) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
