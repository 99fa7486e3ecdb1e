"""Page 2 of the report, for legal: the chain of custody of the record itself.

Why beside the evidence manifest: counsel asks not only "what was collected, by whom, with which hash" (the
manifest) but "how do we know the record was not changed afterwards". The answer is the hash chain's head now,
every signed chain head (`chain.anchored`: which key signed which head, whether the signature verifies, where
it was published outside the case) and every signed export. All of it is read from the case's own events.
"""

from __future__ import annotations

from collections.abc import Sequence

from eksir.models.case import CaseEvent
from eksir.report.briefing import bounded
from eksir.report.model import Custody, ExportRow, SignedHead, utc_text
from eksir.store.anchor import ANCHORED_EVENT, anchor_valid

EXPORTED_EVENT = "case.exported"


def _strings(value: object) -> tuple[str, ...]:
    return tuple(bounded(v, 200) for v in value) if isinstance(value, list) else ()


def build_custody(events: Sequence[CaseEvent]) -> Custody:
    """Custody facts from the event log (already chain-verified by `load_record`)."""
    custody = Custody(events=len(events))
    if events:
        custody.head_seq, custody.head_hash = events[-1].seq, events[-1].hash
    for event in events:
        data = event.data
        if event.type == ANCHORED_EVENT:
            custody.signed_heads.append(
                SignedHead(
                    utc_text(event.at),
                    bounded(data.get("phase", ""), 60),
                    int(data.get("seq") or 0),
                    bounded(data.get("head", ""), 80),
                    bounded(data.get("key_fingerprint", ""), 100),
                    anchor_valid(data),
                    _strings(data.get("published_to")),
                    _strings(data.get("failed")),
                )
            )
        elif event.type == EXPORTED_EVENT:
            head = data.get("chain_head")
            head = head if isinstance(head, dict) else {}
            custody.exports.append(
                ExportRow(
                    utc_text(event.at),
                    bounded(data.get("archive", ""), 120),
                    bounded(data.get("manifest_sha256", ""), 80),
                    bounded(data.get("key_fingerprint", ""), 100),
                    f"event {head.get('seq')} sha256 {bounded(head.get('hash', ''), 80)}",
                )
            )
    return custody
