"""Find the exact pod the finding saw, and describe it: owners, containers, privileges.

Why by uid first: a name is reused (StatefulSets, a re-applied manifest); the uid is the one object GuardDuty
saw. Listing the namespace and matching `metadata.uid` is the only way, since pods have no uid field
selector. A pod of the same name but another uid is still reported (the responder needs to know what runs
there now) with a warning that it was replaced. A pod that is gone is not an error: identity containment and
the hunt still apply, so the resolution says so and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass

from eksir.models.finding import Workload
from eksir.models.resolution import ContainerInfo, PodInfo
from eksir.resolve.kube import JsonObj, KubeReader, meta, q, section, str_map
from eksir.resolve.owners import Owner, OwnerCache

_POD_TYPES = {"pod", "pods", "v1/pods"}
_CONTAINER_KINDS = (
    ("containers", "containerStatuses"),
    ("initContainers", "initContainerStatuses"),
    ("ephemeralContainers", "ephemeralContainerStatuses"),  # `kubectl debug --profile=sysadmin` lives here
)


@dataclass(frozen=True)
class FoundPod:
    """The pod as the model describes it, plus the raw objects the outage check reads."""

    info: PodInfo
    raw: JsonObj
    owners: tuple[Owner, ...]


def find_pod(
    kube: KubeReader, owners: OwnerCache, workload: Workload | None, notes: list[str]
) -> FoundPod | None:
    """Locate the finding's pod (uid first, then namespace/name); None, with a note, when it is gone.

    Raises UnreachableError, PermissionDeniedError or TemporaryError from the API server.
    """
    if workload is None or not workload.namespace or not (workload.name or workload.uid):
        notes.append(
            "the finding names no pod (no workload namespace/name): pod, node and outage not resolved"
        )
        return None
    if workload.type and workload.type.strip().lower() not in _POD_TYPES:
        notes.append(f"the finding names a {workload.type!r}, not a pod: pod, node and outage not resolved")
        return None
    namespace = workload.namespace
    raw = _by_uid(kube, namespace, workload.uid) if workload.uid else None
    if raw is None and workload.name:
        raw = kube.get(
            f"/api/v1/namespaces/{q(namespace)}/pods/{q(workload.name)}",
            f"read pod {namespace}/{workload.name}",
        )
        found_uid = meta(raw).get("uid")
        if raw is not None and workload.uid and found_uid != workload.uid:
            notes.append(
                f"pod {namespace}/{workload.name} was replaced since the finding (the finding saw uid "
                f"{workload.uid}, the pod there now has uid {found_uid}): the suspect pod itself is gone"
            )
    if raw is None:
        notes.append(
            f"pod {namespace}/{workload.name or workload.uid} no longer exists: nothing to isolate or "
            "capture on it; identity containment and the hunt still apply"
        )
        return None
    chain = owners.chain(namespace, raw)
    return FoundPod(info=pod_info(raw, chain), raw=raw, owners=chain)


def _by_uid(kube: KubeReader, namespace: str, uid: str) -> JsonObj | None:
    pods = kube.list(f"/api/v1/namespaces/{q(namespace)}/pods", f"list pods in namespace {namespace}")
    return next((pod for pod in pods if meta(pod).get("uid") == uid), None)


def pod_info(raw: JsonObj, chain: tuple[Owner, ...]) -> PodInfo:
    """PodInfo from a pod's JSON and its owner chain."""
    metadata, spec, status = meta(raw), section(raw, "spec"), section(raw, "status")
    return PodInfo(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        node_name=spec.get("nodeName"),
        service_account=spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
        phase=status.get("phase"),
        pod_ip=status.get("podIP"),
        labels=str_map(metadata.get("labels")),
        owner_chain=tuple(link.ref for link in chain),
        containers=_containers(spec, status),
        host_network=bool(spec.get("hostNetwork")),
        host_pid=bool(spec.get("hostPID")),
        host_ipc=bool(spec.get("hostIPC")),
    )


def _containers(spec: JsonObj, status: JsonObj) -> tuple[ContainerInfo, ...]:
    result: list[ContainerInfo] = []
    for spec_key, status_key in _CONTAINER_KINDS:
        ids = {
            s.get("name"): s.get("containerID") for s in status.get(status_key) or [] if isinstance(s, dict)
        }
        for container in spec.get(spec_key) or []:
            if not isinstance(container, dict) or not container.get("name"):
                continue
            privileged = section(container, "securityContext").get("privileged")
            result.append(
                ContainerInfo(
                    name=str(container["name"]),
                    image=container.get("image"),
                    container_id=ids.get(container["name"]) or None,
                    privileged=privileged if isinstance(privileged, bool) else None,
                )
            )
    return tuple(result)


def find_pod_by_container(
    kube: KubeReader, owners: OwnerCache, container_id: str, notes: list[str]
) -> FoundPod | None:
    """The pod running the container a Runtime Monitoring finding names, when it names no pod.

    The runtime agent reports the container's runtime id (`containerd://<id>` in the pod's status, the bare
    id in the finding); pods have no field selector for it, so every pod is listed and compared.
    """
    wanted = container_id.rsplit("//", 1)[-1]
    for raw in kube.list("/api/v1/pods", "list pods in every namespace"):
        status = section(raw, "status")
        for _, status_key in _CONTAINER_KINDS:
            for item in status.get(status_key) or []:
                found = item.get("containerID") if isinstance(item, dict) else None
                if isinstance(found, str) and wanted and found.rsplit("//", 1)[-1] == wanted:
                    namespace = str(meta(raw).get("namespace") or "")
                    chain = owners.chain(namespace, raw)
                    return FoundPod(info=pod_info(raw, chain), raw=raw, owners=chain)
    notes.append(f"no pod runs container {wanted[:64]} any more: pod, node and outage not resolved")
    return None
