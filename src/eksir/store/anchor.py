"""Anchoring the event chain outside the case: a signed chain head, published where the case cannot reach.

Why: the chain proves a record consistent with itself, nothing more. Whoever can write the case directory can
rewrite an evidence file and recompute every hash after it, or delete the last events (a waiver and its
approver), and the result verifies. A head (sequence number + hash of the last event) signed with the
responder's Ed25519 key and published elsewhere (the war room, an Object-Lock bucket, the printed line a
person keeps) pins the record up to that point: a rewritten chain no longer has that hash at that sequence
number, a truncated one no longer reaches it.

Each anchoring appends a `chain.anchored` event (the head it signed, the signature, where it was published);
`case verify` checks those signatures against the chain, reports a case no anchor was published for as "not
anchored", and checks a published head given back to it (`--anchor SEQ:HASH` or the anchor's JSON file).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eksir.errors import BadInputError, CaseInvalidError
from eksir.models.case import CaseEvent
from eksir.store.case_store import CaseHandle
from eksir.store.keys import fingerprint

ANCHOR_SCHEMA = "eksir.anchor/v1"
ANCHORED_EVENT = "chain.anchored"
Publisher = Callable[["Anchor"], str]
"""Publishes one anchor somewhere outside the case; returns where (for the record); raises EksirError."""


@dataclass(frozen=True)
class Anchor:
    """A signed chain head: what a verifier needs, and nothing that is not already in the case."""

    case_id: str
    seq: int
    head: str
    phase: str
    at: str
    public_key: str
    key_fingerprint: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        body = {"schema": ANCHOR_SCHEMA, "case_id": self.case_id, "seq": self.seq, "head": self.head}
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    def document(self) -> dict[str, Any]:
        return {"schema": ANCHOR_SCHEMA, **self.__dict__}

    def line(self) -> str:
        return f"{self.case_id} seq {self.seq} sha256 {self.head}"


@dataclass(frozen=True)
class AnchorResult:
    anchor: Anchor
    published_to: tuple[str, ...]
    failed: tuple[str, ...]


def chain_head(handle: CaseHandle) -> tuple[int, str]:
    """The last event's sequence number and hash; raises CaseInvalidError on an empty or unreadable log."""
    last: CaseEvent | None = None
    for event in handle.log.events():
        last = event
    if last is None:
        raise CaseInvalidError(f"case {handle.path.name} has no events to anchor")
    return last.seq, last.hash


def sign_head(handle: CaseHandle, phase: str, key: Ed25519PrivateKey) -> Anchor:
    seq, head = chain_head(handle)
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    unsigned = Anchor(
        case_id=handle.load().id,
        seq=seq,
        head=head,
        phase=phase[:100],
        at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        public_key=base64.b64encode(raw).decode(),
        key_fingerprint=fingerprint(public),
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    return Anchor(**{**unsigned.__dict__, "signature": signature})


def anchor_case(
    handle: CaseHandle, phase: str, key: Ed25519PrivateKey, publishers: Sequence[tuple[str, Publisher]]
) -> AnchorResult:
    """Sign the head, publish it wherever configured (a failure is recorded, not fatal), log it."""
    anchor = sign_head(handle, phase, key)
    published: list[str] = []
    failed: list[str] = []
    for name, publish in publishers:
        try:
            published.append(publish(anchor))
        except Exception as exc:
            failed.append(f"{name}: {getattr(exc, 'message', exc.__class__.__name__)}"[:300])
    handle.append(ANCHORED_EVENT, {**anchor.document(), "published_to": published, "failed": failed})
    return AnchorResult(anchor, tuple(published), tuple(failed))


def anchor_valid(data: dict[str, Any]) -> bool:
    """True when a recorded or published anchor's signature verifies with the key it names."""
    try:
        fields = {k: data[k] for k in Anchor.__dataclass_fields__}
        anchor = Anchor(**fields)
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(anchor.public_key))
        public.verify(base64.b64decode(anchor.signature), anchor.signed_bytes())
    except (KeyError, TypeError, ValueError, InvalidSignature):
        return False
    return fingerprint(public) == anchor.key_fingerprint


@dataclass(frozen=True)
class PublishedHead:
    seq: int
    head: str
    source: str


def parse_anchor(value: str) -> PublishedHead:
    """`SEQ:HASH`, or the path of a published anchor JSON (its signature must verify); BadInputError else."""
    seq, sep, head = value.partition(":")
    if sep and seq.isdigit() and len(head) == 64:
        return PublishedHead(int(seq), head.lower(), value)
    path = Path(value)
    try:
        data = orjson.loads(path.read_bytes()[: 1 << 20])
    except (OSError, orjson.JSONDecodeError) as exc:
        raise BadInputError(f"--anchor {value!r} is neither SEQ:SHA256 nor a readable anchor file") from exc
    if not isinstance(data, dict) or data.get("schema") != ANCHOR_SCHEMA or not anchor_valid(data):
        raise BadInputError(f"{path.name} is not a validly signed {ANCHOR_SCHEMA} document")
    return PublishedHead(int(data["seq"]), str(data["head"]), path.name)


def check_anchors(events: Sequence[CaseEvent], published: Sequence[PublishedHead]) -> tuple[list[str], str]:
    """Problems with the recorded and given anchors, and a status line ("anchored at ..."/"not anchored")."""
    by_seq = {event.seq: event.hash for event in events}
    last = events[-1].seq if events else 0
    problems: list[str] = []
    outside: list[int] = []
    for event in events:
        if event.type != ANCHORED_EVENT:
            continue
        data = event.data
        if not anchor_valid(data) or by_seq.get(int(data.get("seq", 0))) != data.get("head"):
            problems.append(f"event {event.seq}: the anchor it records does not match the chain")
        elif data.get("published_to"):
            outside.append(int(data["seq"]))
    for given in published:
        if given.seq > last:
            problems.append(
                f"the chain ends at event {last}, shorter than the published anchor at event {given.seq} "
                f"({given.source}): events were removed"
            )
        elif by_seq.get(given.seq) != given.head:
            problems.append(f"event {given.seq} differs from the published anchor ({given.source})")
    if published:
        status = f"anchored: checked against {len(published)} published head(s)"
    elif outside:
        status = f"anchored at event {max(outside)} (published outside the case)"
    else:
        status = "not anchored (no chain head was published outside the case)"
    return problems, status
