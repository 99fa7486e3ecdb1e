"""Outage items for the suspect pod itself: isolating it, orphaning it, and its PodDisruptionBudgets.

Why separate rules per owner kind: "orphan the pod so a replacement takes over" (DESIGN) works for a
ReplicaSet, but a StatefulSet can only recreate a pod under the name the preserved pod keeps, and a Job
runs its (privileged) payload again. A bare pod has no replacement at all, so whether isolating it hurts
depends on whether a Service sends it traffic.
"""

from __future__ import annotations

from eksir.models.resolution import OutageItem
from eksir.resolve.context import Ctx
from eksir.resolve.kube import JsonObj, meta, q, section
from eksir.resolve.notes import optional
from eksir.resolve.owners import Capacity, pod_is_ready, serving_capacity
from eksir.resolve.pod import FoundPod
from eksir.resolve.selectors import map_selector_matches, selector_matches

ISOLATE_POD = "k8s.isolate_pod"
ORPHAN_POD = "k8s.orphan_pod"
_ORPHAN_EFFECT = {
    "ReplicaSet": (False, "its ReplicaSet {name} starts a replacement, so the service keeps its capacity"),
    "ReplicationController": (False, "its ReplicationController {name} starts a replacement"),
    "DaemonSet": (False, "DaemonSet {name} starts a replacement on the same node, next to the preserved pod"),
    "StatefulSet": (
        True,
        "StatefulSet {name} can only recreate the pod under the name the preserved pod keeps: no replacement "
        "starts and the StatefulSet stalls until the pod is deleted",
    ),
    "Job": (True, "Job {name} starts a new pod to finish its work: the payload runs again"),
}


def pod_items(ctx: Ctx, pod: FoundPod) -> tuple[Capacity | None, int | None, list[OutageItem]]:
    """(serving capacity, PDB disruptions allowed, items) for the suspect pod."""
    info = pod.info
    ready = pod_is_ready(pod.raw)
    capacity = serving_capacity(info.namespace, pod.owners)
    items = [_isolation_item(ctx, pod, capacity, ready), _orphan_item(pod)]
    if info.host_network:
        items.append(
            OutageItem(
                subject=f"pod {info.namespace}/{info.name}",
                message="hostNetwork pod: a NetworkPolicy does not apply to it, so pod isolation does not "
                "cut its traffic; isolate the instance (after capture) or stop the pod",
                steps=(ISOLATE_POD,),
            )
        )
    allowed, pdb_item = _pdb_item(ctx, pod, ready)
    if pdb_item is not None:
        items.append(pdb_item)
    return capacity, allowed, items


def _isolation_item(ctx: Ctx, pod: FoundPod, capacity: Capacity | None, ready: bool) -> OutageItem:
    info = pod.info
    subject = f"pod {info.namespace}/{info.name}"
    if not ready:
        message = "the pod is not Ready: it serves no traffic, so isolating it costs no capacity"
        return OutageItem(subject=subject, message=message, steps=(ISOLATE_POD,))
    if capacity is None and pod.owners:
        owner = pod.owners[0].ref
        message = (
            f"its owner {owner.kind} {owner.name} could not be read (gone or a custom kind): assume "
            "isolating it removes serving capacity"
        )
        return OutageItem(subject=subject, message=message, blocking=True, steps=(ISOLATE_POD,))
    if capacity is None:
        services = _selecting_services(ctx, pod)
        if services:
            message = (
                f"a bare pod (no controller) that Service(s) {', '.join(services)} send traffic to: "
                "isolating it takes them offline and nothing replaces it"
            )
            return OutageItem(subject=subject, message=message, blocking=True, steps=(ISOLATE_POD,))
        message = "a bare pod (no controller) that no Service selects: isolating it takes no service offline"
        return OutageItem(subject=subject, message=message, steps=(ISOLATE_POD,))
    return _replica_item(subject, capacity, info.node_name)


def _replica_item(subject: str, capacity: Capacity, node: str | None) -> OutageItem:
    others = (capacity.ready or 0) - 1
    counts = f"ready {capacity.ready} of {capacity.desired}"
    if capacity.kind == "DaemonSet":
        message = f"a {capacity.key} pod ({counts}): isolating it affects its own node {node} only"
        return OutageItem(subject=subject, message=message, steps=(ISOLATE_POD,))
    if others < 1:
        message = (
            f"the only ready replica of {capacity.key} ({counts}): isolating it leaves the workload without "
            "ready replicas; orphan it first so a replacement starts, or scale up, then isolate"
        )
        return OutageItem(subject=subject, message=message, blocking=True, steps=(ISOLATE_POD,))
    message = (
        f"{others} other ready replica(s) of {capacity.key} keep serving while it is isolated ({counts})"
    )
    return OutageItem(subject=subject, message=message, steps=(ISOLATE_POD,))


def _orphan_item(pod: FoundPod) -> OutageItem:
    subject = f"pod {pod.info.namespace}/{pod.info.name}"
    if not pod.owners:
        return OutageItem(
            subject=subject, message="no controller: orphaning does not apply", steps=(ORPHAN_POD,)
        )
    owner = pod.owners[0].ref
    blocking, effect = _ORPHAN_EFFECT.get(
        owner.kind, (False, f"what the {owner.kind} controller does with an orphan is not known to eksir")
    )
    message = "orphaning it: " + effect.format(name=owner.name)
    if not blocking and any(c.privileged for c in pod.info.containers):
        message += "; the replacement runs the same privileged spec, so fix the workload's source as well"
    return OutageItem(subject=subject, message=message, blocking=blocking, steps=(ORPHAN_POD,))


def _pdb_item(ctx: Ctx, pod: FoundPod, ready: bool) -> tuple[int | None, OutageItem | None]:
    namespace = pod.info.namespace
    path = f"/apis/policy/v1/namespaces/{q(namespace)}/poddisruptionbudgets"
    budgets = optional(ctx.notes, lambda: ctx.kube.list(path, f"list PodDisruptionBudgets in {namespace}"))
    selecting = [
        b for b in budgets or [] if selector_matches(section(b, "spec").get("selector"), pod.info.labels)
    ]
    if not selecting:
        return None, None
    allowed = min(_allowed(b) for b in selecting)
    names = ", ".join(sorted(str(meta(b).get("name")) for b in selecting))
    subject = f"pod {namespace}/{pod.info.name}"
    if allowed > 0:
        message = f"PodDisruptionBudget {names} allows {allowed} disruption(s) now"
        return allowed, OutageItem(subject=subject, message=message, steps=(ISOLATE_POD,))
    message = (
        f"PodDisruptionBudget {names} allows 0 disruptions: the workload is at its declared minimum, so "
        "isolating this ready pod takes it below, and a node drain would be refused"
    )
    if not ready:
        message = (
            f"PodDisruptionBudget {names} allows 0 disruptions, but this pod is not Ready and not counted"
        )
    return allowed, OutageItem(subject=subject, message=message, blocking=ready, steps=(ISOLATE_POD,))


def _allowed(budget: JsonObj) -> int:
    value = section(budget, "status").get("disruptionsAllowed")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _selecting_services(ctx: Ctx, pod: FoundPod) -> list[str]:
    namespace = pod.info.namespace
    path = f"/api/v1/namespaces/{q(namespace)}/services"
    services = optional(ctx.notes, lambda: ctx.kube.list(path, f"list Services in {namespace}")) or []
    return sorted(
        str(meta(s).get("name"))
        for s in services
        if map_selector_matches(section(s, "spec").get("selector"), pod.info.labels)
    )
