"""Which evidence holds secrets: so the export manifest and the report can say so, and its handler can act.

Why rules over the evidence record rather than a flag stored at collection: a node capture holds
`/proc/*/environ` and `crictl inspect` output (container environment variables, often credentials), and a
Kubernetes Secret or Lambda function described before deletion holds their values, whether the case was
written by this version or an earlier one. The rules read only the case's own record (name, source,
description, and for recovery descriptions the recorded parameters), so an old case is marked the same way.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from eksir.models.case import EvidenceItem

NODE_CAPTURE = (
    "node capture: process environments (/proc/*/environ) and container inspect output, "
    "environment variables that often hold credentials"
)
SECRET_OBJECT = "a Kubernetes Secret as described before deletion: its data values"
LAMBDA_CONFIG = "a Lambda function as described before deletion: its environment variables"

VOLATILE_DESCRIPTION = "volatile evidence from the node"
"""How a node capture's evidence description starts (written by actions/evidence/volatile.py)."""
# Evidence sources name the action that described the object; cases written before the recovery actions took
# `service.verb` ids (eksir 0.1.0 before this change) name the old `recovery.*` ids, and stay marked.
_LAMBDA_SOURCES = frozenset({"lambda.delete_function describe", "recovery.delete_lambda_function describe"})
_K8S_OBJECT_SOURCES = frozenset({"k8s.delete_object describe", "recovery.delete_k8s_object describe"})
_MAX_DESCRIPTION_BYTES = 4 << 20


def sensitive_reason(item: EvidenceItem, case_dir: Path) -> str | None:
    """Why `item` is sensitive, or None. Reads the item's file only for a recovery description."""
    if item.description.startswith(VOLATILE_DESCRIPTION):
        return NODE_CAPTURE
    if item.source in _LAMBDA_SOURCES:
        return LAMBDA_CONFIG
    if item.source in _K8S_OBJECT_SOURCES and _describes_a_secret(case_dir / item.path):
        return SECRET_OBJECT
    return None


def _describes_a_secret(path: Path) -> bool:
    try:
        if path.stat().st_size > _MAX_DESCRIPTION_BYTES:
            return False  # a Secret holds at most 1 MiB: a larger description is of something else
        body = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    params = body.get("params") if isinstance(body, dict) else None
    ref = params.get("ref") if isinstance(params, dict) else None
    return isinstance(ref, dict) and ref.get("resource") == "secrets"
