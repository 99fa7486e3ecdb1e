"""Who owns a pod, and how many ready replicas that owner has.

Why walk ownerReferences instead of trusting labels: the controller reference is what the garbage collector
and the controllers themselves follow (ReplicaSet -> Deployment, Job -> CronJob), so it names the object a
responder must scale, pause or orphan from. Labels only suggest. The owner objects read here also carry the
replica counts the outage check needs, so they are cached and shared with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from eksir.models.resolution import OwnerRef
from eksir.resolve.kube import JsonObj, KubeReader, meta, q, section

_PATHS: dict[str, str] = {
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
    "ReplicationController": "/api/v1/namespaces/{ns}/replicationcontrollers/{name}",
}
# Which owner in a chain serves traffic and counts replicas: a Deployment's count covers all its ReplicaSets.
_SERVING_ORDER = ("Deployment", "StatefulSet", "DaemonSet", "ReplicationController", "ReplicaSet", "Job")
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Owner:
    """One link of an owner chain; `obj` is None when the owner is gone or of a kind not read here."""

    ref: OwnerRef
    obj: JsonObj | None


@dataclass(frozen=True)
class Capacity:
    """Desired and ready replicas of the owner that serves the pod's traffic."""

    kind: str
    name: str
    namespace: str
    desired: int | None
    ready: int | None

    @property
    def key(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def controller_reference(obj: JsonObj) -> JsonObj | None:
    """The ownerReference marked `controller: true`, else the first one, else None."""
    refs = [ref for ref in meta(obj).get("ownerReferences") or [] if isinstance(ref, dict)]
    return next((ref for ref in refs if ref.get("controller")), refs[0] if refs else None)


class OwnerCache:
    """Reads owner objects once per resolution (many pods on a node share a ReplicaSet)."""

    def __init__(self, kube: KubeReader) -> None:
        self._kube = kube
        self._cache: dict[tuple[str, str, str], JsonObj | None] = {}

    def get(self, kind: str, namespace: str, name: str) -> JsonObj | None:
        """The owner object, None when it is gone or its kind is not one this module reads."""
        key = (kind, namespace, name)
        if key not in self._cache:
            template = _PATHS.get(kind)
            path = template.format(ns=q(namespace), name=q(name)) if template else None
            doing = f"read {kind} {namespace}/{name}"
            self._cache[key] = self._kube.get(path, doing) if path else None
        return self._cache[key]

    def chain(self, namespace: str, obj: JsonObj) -> tuple[Owner, ...]:
        """The controller chain of `obj`, nearest first (ReplicaSet, then Deployment)."""
        links: list[Owner] = []
        current: JsonObj | None = obj
        seen: set[str] = set()
        while current is not None and len(links) < _MAX_DEPTH:
            ref = controller_reference(current)
            if ref is None or not ref.get("kind") or not ref.get("name"):
                break
            kind, name = str(ref["kind"]), str(ref["name"])
            uid = str(ref["uid"]) if ref.get("uid") else None
            if f"{kind}/{name}" in seen:
                break  # a reference cycle in a hand-made object must not loop forever
            seen.add(f"{kind}/{name}")
            owner_obj = None if kind == "Node" else self.get(kind, namespace, name)
            if owner_obj is not None and uid and meta(owner_obj).get("uid") not in (None, uid):
                owner_obj = None  # same name, different object: the recorded owner was replaced
            links.append(Owner(OwnerRef(kind=kind, name=name, uid=uid), owner_obj))
            current = owner_obj
        return tuple(links)


def serving_capacity(namespace: str, chain: tuple[Owner, ...]) -> Capacity | None:
    """Replica counts of the owner that serves the pod, or None for a bare pod or unreadable owners."""
    for kind in _SERVING_ORDER:
        owner = next((link for link in chain if link.ref.kind == kind and link.obj is not None), None)
        if owner is not None and owner.obj is not None:
            desired, ready = _counts(kind, owner.obj)
            return Capacity(kind, owner.ref.name, namespace, desired, ready)
    return None


def _counts(kind: str, obj: JsonObj) -> tuple[int | None, int | None]:
    spec, status = section(obj, "spec"), section(obj, "status")
    if kind == "DaemonSet":
        return _int(status.get("desiredNumberScheduled")), _int(status.get("numberReady"), 0)
    if kind == "Job":
        return _int(spec.get("parallelism"), 1), _int(status.get("ready"), 0)
    return _int(spec.get("replicas"), 1), _int(status.get("readyReplicas"), 0)


def _int(value: object, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def pod_is_ready(pod: JsonObj) -> bool:
    """The pod's Ready condition is True (what Services and PDBs count)."""
    conditions = section(pod, "status").get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )
