"""The Eviction API (policy/v1): how a drain removes a pod while honouring its PodDisruptionBudgets.

Why a module of its own: an eviction the API server refuses because a PodDisruptionBudget allows no more
disruptions is an *answer* (429 Too Many Requests with the budget named in the message), not a transient
fault; `k8s_call` would turn it into a TemporaryError and the engine would retry it to no end. Here it is
returned as the refusal text so the drain can stop and say which budget holds the pod.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from eksir.clients.k8s import translate_api_exception

_TIMEOUT = (5, 30)
_MESSAGE_LIMIT = 300


def evict_pod(api: Any, namespace: str, name: str, uid: str | None = None) -> str | None:
    """Ask the API server to evict the pod; None when evicted (or already gone), else why it refused.

    Raises eksir errors for anything but a PodDisruptionBudget refusal (429) and a missing pod (404).
    """
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if uid:
        body["deleteOptions"] = {"preconditions": {"uid": uid}}
    try:
        api.call_api(
            f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "POST",
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        if exc.status == 429:
            return _status_message(exc)
        raise translate_api_exception(exc, f"evict pod {namespace}/{name}") from exc
    except (HTTPError, OSError) as exc:
        raise translate_api_exception(exc, f"evict pod {namespace}/{name}") from exc
    return None


def _status_message(exc: ApiException) -> str:
    """The Status message the API server sent (it names the budget), bounded; the reason when unreadable."""
    try:
        message = str(json.loads(exc.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    return (message or f"{exc.status} {exc.reason}")[:_MESSAGE_LIMIT]
