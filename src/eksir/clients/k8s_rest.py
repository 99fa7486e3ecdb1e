"""Generic Kubernetes object access by REST path, as plain JSON.

One code path for every kind recovery removes.

Why not the generated typed clients: recovery deletes and restores pods, DaemonSets, CronJobs, bindings,
Secrets and ServiceAccounts alike; the audit log names them by (apiGroup, apiVersion, resource), which maps
directly onto the REST path, and the JSON the API server returns is exactly what rollback sends back.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.k8s import k8s_call
from eksir.errors import NotFoundError
from eksir.models.k8s_object import ObjectRef

_TIMEOUT = (5, 30)
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink")


def _call(
    api: Any, path: str, method: str, body: Any = None, query: list[tuple[str, Any]] | None = None
) -> Any:
    return api.call_api(
        path,
        method,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        response_type="object",
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _request_timeout=_TIMEOUT,
    )


def get_object(api: Any, ref: ObjectRef) -> dict[str, Any] | None:
    """The object, or None when the API server answers 404; other failures raise eksir errors."""
    try:
        with k8s_call(f"read {ref.label()}"):
            found = _call(api, ref.path(), "GET")
    except NotFoundError:
        return None
    return found if isinstance(found, dict) else None


def delete_object(api: Any, ref: ObjectRef) -> bool:
    """Delete (background propagation); False when it was already gone."""
    try:
        with k8s_call(f"delete {ref.label()}"):
            _call(api, ref.path(), "DELETE", body={"propagationPolicy": "Background"})
    except NotFoundError:
        return False
    return True


def create_object(api: Any, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
    """Create `body` in the ref's collection; raises eksir errors (409 is a TemporaryError there)."""
    with k8s_call(f"create {ref.label()}"):
        created = _call(api, ref.collection(), "POST", body=body)
    return created if isinstance(created, dict) else {}


def replace_object(api: Any, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
    """PUT `body` over the live object (its current resourceVersion is used)."""
    with k8s_call(f"replace {ref.label()}"):
        replaced = _call(api, ref.path(), "PUT", body=body)
    return replaced if isinstance(replaced, dict) else {}


def recreatable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without server-assigned fields and status, so it can be sent to POST again."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def list_objects(api: Any, ref: ObjectRef) -> list[dict[str, Any]]:
    """Every object in the ref's collection (its name is ignored); raises eksir errors."""
    with k8s_call(f"list {ref.resource}"):
        found = _call(api, ref.collection(), "GET")
    items = found.get("items") if isinstance(found, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def json_patch_object(api: Any, ref: ObjectRef, ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply RFC 6902 `ops` to the object (a `test` op makes it conditional); raises eksir errors."""
    with k8s_call(f"patch {ref.label()}"):
        patched = api.call_api(
            ref.path(),
            "PATCH",
            header_params={"Accept": "application/json", "Content-Type": "application/json-patch+json"},
            body=ops,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=_TIMEOUT,
        )
    return patched if isinstance(patched, dict) else {}
