"""Case identity across findings: one case per incident (shared/DESIGN.md, "Case identity").

A finding's case is found, in order: its own case (same finding id again: an update, `case_id_for`); an
attack sequence's case by its sequence uid (also `case_id_for`); an open case that already names one of its
workloads (the finding *joins* it, recorded as a `case.joined` event); otherwise a new case.

Workloads are keyed `account/cluster/namespace/name` (an attack sequence gives each workload it names). The
index lives beside the cases, `<cases-dir>/.index/{workloads,findings}/<sha256 of the key>`, one small file
per key holding the case id, created exclusively so two processes never give one key two cases. It is
derived state: every case records its workloads in its `case.opened` / `case.joined` event, from which the
index can be rebuilt; a missing index only means a new case instead of a join.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from eksir.models.finding import Finding

INDEX_DIR = ".index"


def workload_keys(finding: Finding) -> list[str]:
    """The keys of every workload the finding names (its pod, or each workload of its sequence)."""
    prefix = f"{finding.account_id or ''}/{finding.cluster.name if finding.cluster else ''}"
    if finding.sequence is not None:
        pairs = [
            (r.namespace, r.name)
            for r in finding.sequence.resources
            if r.resource_type == "KUBERNETES_WORKLOAD"
        ]
    else:
        pairs = [(finding.workload.namespace, finding.workload.name)] if finding.workload else []
    return list(
        dict.fromkeys(f"{prefix}/{namespace}/{name}" for namespace, name in pairs if namespace and name)
    )


def finding_key(finding: Finding) -> str:
    return finding.arn or finding.id


class IncidentIndex:
    """Which case holds each workload and each joined finding, under one cases directory."""

    def __init__(self, root: Path) -> None:
        self.root = root / INDEX_DIR

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / hashlib.sha256(key.encode()).hexdigest()

    def lookup(self, kind: str, key: str) -> str | None:
        try:
            value = self._path(kind, key).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value if value.startswith("eksir-") and "/" not in value and ".." not in value else None

    def claim(self, kind: str, key: str, case_id: str) -> bool:
        """Record `key` -> `case_id` unless another case holds it already; True when recorded."""
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="ascii") as stream:
            stream.write(case_id + "\n")
        return True

    def release(self, kind: str, key: str) -> None:
        """Forget a key whose case is closed, so a new incident on that workload opens a new case."""
        self._path(kind, key).unlink(missing_ok=True)
