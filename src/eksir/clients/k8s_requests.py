"""Kubernetes requests made as someone else or as a dry run: impersonation, "who am I", and a pod create
whose refusal is the answer (the prevention proof).

Why in clients/: these need the SDK's ApiClient internals (its urllib3 pool, its ApiException) and the
prevention actions must not import the SDK (DESIGN.md). Each returns plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPHeaderDict

from eksir.clients.k8s import translate_api_exception


class _ImpersonatingPool:
    """Adds repeated Impersonate-User/-Group headers to every request of a urllib3 pool manager."""

    def __init__(self, inner: Any, headers: list[tuple[str, str]]) -> None:
        self._inner = inner
        self._headers = headers

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        merged = HTTPHeaderDict()
        for name, value in dict(headers or {}).items():
            if not name.lower().startswith("impersonate-"):
                merged.add(name, value)
        for name, value in self._headers:
            merged.add(name, value)
        return self._inner.request(method, url, *args, headers=merged, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def impersonating(api: Any, username: str, groups: Sequence[str]) -> Any:
    """An ApiClient sharing `api`'s configuration whose requests impersonate username + groups."""
    clone = k8s.ApiClient(api.configuration)
    headers = [("Impersonate-User", username)] + [("Impersonate-Group", g) for g in groups]
    clone.rest_client.pool_manager = _ImpersonatingPool(clone.rest_client.pool_manager, headers)
    return clone


def whoami(api: Any) -> str:
    """The username the API server sees for `api` (SelfSubjectReview); 'unknown' if it cannot say."""
    review = k8s.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    try:
        answer = k8s.AuthenticationV1Api(api).create_self_subject_review(review)
    except ApiException:
        return "unknown"
    user = answer.status.user_info if answer.status else None
    return str(user.username) if user and user.username else "unknown"


def dry_run_create_pod(api: Any, namespace: str, body: dict[str, Any], doing: str) -> tuple[int, str]:
    """POST the pod with dryRun=All: (201, what was admitted) or the API server's refusal (status, message).

    A refusal is an answer, not an error; only a request that never got an answer raises (eksir errors).
    """
    try:
        created = k8s.CoreV1Api(api).create_namespaced_pod(namespace, body, dry_run="All")
    except ApiException as exc:
        status = int(exc.status or 0)
        if status == 0:
            raise translate_api_exception(exc, doing) from exc
        return status, _status_message(exc)
    return 201, f"pod {created.metadata.name} admitted (dry run, nothing stored)"


def _status_message(exc: ApiException) -> str:
    try:
        return str(orjson.loads(exc.body or b"{}").get("message") or exc.reason)
    except (orjson.JSONDecodeError, AttributeError):
        return str(exc.reason or exc.body)
