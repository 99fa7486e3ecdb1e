"""A real, empty case bundle for action tests that check what lands in the evidence manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from eksir.models.case import Case
from eksir.store.case_store import CaseHandle
from tests.actions.conftest import CASE_ID


def empty_case(root: Path) -> CaseHandle:
    """A case directory with a header and no evidence, written through the store (hash-chained log)."""
    root.mkdir(parents=True, exist_ok=True)
    handle = CaseHandle(root, "tester@test")
    case = Case(
        id=CASE_ID,
        opened_at=datetime.now(UTC),
        opened_by="tester@test",
        finding_id="f-1",
        finding_type="PrivilegeEscalation:Kubernetes/PrivilegedContainer",
    )
    handle.save(case, "case opened for a test")
    return handle
