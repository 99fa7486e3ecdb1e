"""Which pods a drain moves, and which PodDisruptionBudgets would refuse to let them go.

Why read the budgets before evicting: the API server is the authority (an eviction it refuses is never
forced), but reading `status.disruptionsAllowed` first lets `check` refuse before the node is cordoned or a
single pod moved, and name the budget in the plan for the approver.
"""

from __future__ import annotations

from typing import Any

from eksir.actions.base import ActionContext
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_rest import list_objects
from eksir.models.k8s_object import ObjectRef
from eksir.resolve.selectors import selector_matches

_BUDGETS = ObjectRef(api_group="policy", resource="poddisruptionbudgets", name="-")


def drainable_pods(ctx: ActionContext, node_name: str, keep: tuple[str, ...]) -> list[dict[str, Any]]:
    """The pods a drain evicts: running on the node, not kept as evidence, not DaemonSet or mirror pods
    (kubectl drain skips those too: they are tied to the node), not finished, not already terminating."""
    with k8s_call(f"list pods on {node_name}"):
        found = ctx.k8s().call_api(
            "/api/v1/pods",
            "GET",
            query_params=[("fieldSelector", f"spec.nodeName={node_name}")],
            header_params={"Accept": "application/json"},
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )
    return [p for p in (found or {}).get("items", []) if _drainable(p, keep)]


def _drainable(pod: dict[str, Any], keep: tuple[str, ...]) -> bool:
    meta = pod.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    return not (
        meta.get("name") in keep
        or meta.get("deletionTimestamp")
        or "kubernetes.io/config.mirror" in (meta.get("annotations") or {})
        or any(o.get("kind") == "DaemonSet" and o.get("controller") for o in owners)
        or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    )


def blocking_budgets(ctx: ActionContext, pods: list[dict[str, Any]]) -> list[str]:
    """One line per (budget, pod) where the budget allows no disruption now: what eviction would refuse."""
    if not pods:
        return []
    budgets = list_objects(ctx.k8s(), _BUDGETS)
    lines = []
    for pod in pods:
        meta = pod["metadata"]
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        for budget in budgets:
            bmeta = budget.get("metadata") or {}
            if bmeta.get("namespace") != meta.get("namespace"):
                continue
            if not selector_matches((budget.get("spec") or {}).get("selector"), labels):
                continue
            allowed = int((budget.get("status") or {}).get("disruptionsAllowed") or 0)
            if allowed <= 0:
                lines.append(
                    f"PodDisruptionBudget {bmeta.get('namespace')}/{bmeta.get('name')} allows {allowed} "
                    f"disruptions (pod {meta['namespace']}/{meta['name']})"
                )
    return lines
