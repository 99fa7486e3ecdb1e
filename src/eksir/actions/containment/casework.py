"""What every response action does the same way for the case, kept in one place so actions cannot drift apart.

- Everything an action creates carries the case id (`eksir.io/case-id` label or tag), so a responder can
  always find and undo it, even without the case record.
- `apply` in a dry run must change nothing: the engine normally never calls it then, but an action is the
  last line of defence against a plan being applied by mistake, so it refuses loudly instead of acting.
- Kubernetes objects go into the applied record as plain JSON (what the API server itself would return), so
  the engine can persist them and rollback can send them back unchanged.
- Shell-bound parameters (SSM Run Command) are validated by pattern here, because a finding is
  attacker-influenced input and nothing from it may reach a shell unchecked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eksir.actions.base import ACTION_CASE_LABEL, ActionContext, ActionSpec
from eksir.errors import RefusedError

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import TagTypeDef

CASE_LABEL = ACTION_CASE_LABEL
QUARANTINE_LABEL = "eksir.io/quarantine"
INVESTIGATION_LABEL = "eksir.io/investigation"

INSTANCE_ID_PATTERN = r"^i-[0-9a-f]{8,17}$"
CONTAINER_ID_PATTERN = r"^[0-9a-f]{12,64}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


def require_live(ctx: ActionContext, spec: ActionSpec) -> None:
    """Refuse to apply or roll back in a dry run: nothing may change in a preview."""
    if ctx.dry_run:
        raise RefusedError(f"{spec.id}: dry run, nothing changed (run without --dry-run to apply)")


def case_tags(ctx: ActionContext, **extra: str) -> list[TagTypeDef]:
    """AWS tags naming the case (plus any extra key/value pairs), in the `[{Key, Value}]` shape AWS takes."""
    tags = {CASE_LABEL: ctx.case_id, **extra}
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def k8s_name_for_case(prefix: str, case_id: str) -> str:
    """A DNS-1123 name built from the case id (lowercase, `-` for anything else, at most 63 characters)."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in case_id.lower()).strip("-")
    return f"{prefix}-{cleaned}"[:63].rstrip("-")


def to_json(api_client: Any, obj: Any) -> Any:
    """A Kubernetes model object as the JSON the API server returned (camelCase keys, None fields dropped)."""
    return api_client.sanitize_for_serialization(obj)


def json_pointer(*parts: str) -> str:
    """An RFC 6901 pointer: `/` and `~` inside keys such as `eksir.io/case-id` must be escaped."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def annotation_ops(meta: dict[str, Any], changes: dict[str, str | None]) -> list[dict[str, Any]]:
    """JSON-patch ops that set (a value) or remove (None) annotations, creating the map first when the
    object has none: one call per patch (a second "add /metadata/annotations {}" would empty it again)."""
    present = meta.get("annotations") or {}
    ops: list[dict[str, Any]] = []
    if not meta.get("annotations") and any(v is not None for v in changes.values()):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in changes.items():
        path = json_pointer("metadata", "annotations", key)
        if value is not None:
            ops.append({"op": "add", "path": path, "value": value})
        elif key in present:
            ops.append({"op": "remove", "path": path})
    return ops


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as it can be re-created: without server-assigned fields (uid, resourceVersion...)."""
    meta = dict(obj.get("metadata") or {})
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink"):
        meta.pop(key, None)
    clean = {k: v for k, v in obj.items() if k != "status"}
    clean["metadata"] = meta
    return clean
