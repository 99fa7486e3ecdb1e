"""Prove the prevention: send the attacker's exact pod spec again, as a server-side dry run by the responder,
and show that Pod Security admission refuses it.

Why as the responder and not as the attacker: RBAC decides before admission does, and containment removes the
attacker's RBAC (bindings, aws-auth entries, access entries), so a replay as the attacker is refused by RBAC
and never reaches admission: it would prove containment, not prevention. The responder may create pods in
the namespace, so its request reaches Pod Security admission, which must reject the spec. The spec is the
attacker's own (the audit log's `requestObject`, else what the finding recorded), so the same fields are
judged. Why always a server-side dry run (`dryRun=All`): admission runs in full on a dry run, but nothing is
stored, so if the prevention does NOT hold, the replay re-creates nothing — a proof must never re-launch the
attack.

Outcomes: `proven` (403 and the message names PodSecurity), `denied-by-rbac` (403 before admission: NOT a
proof, reported as "not proven: RBAC"), `admitted` (the prevention does not hold) and `error` (anything
else). `impersonating` remains for a replay as another identity (tests of the attacker's own path); it
needs the `impersonate` verb and sends repeated headers through a wrapped connection pool because the
client's header dict cannot repeat a header.
"""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime
from typing import Any

from eksir.clients.k8s_requests import dry_run_create_pod, whoami
from eksir.models.finding import Finding

_DROP_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "ownerReferences",
    "generateName",
    "selfLink",
    "generation",
    "deletionTimestamp",
)


def pod_from_audit(request_object: dict[str, Any]) -> dict[str, Any]:
    """The pod the attacker sent (audit `requestObject`), minus server-assigned metadata and status."""
    pod = copy.deepcopy(request_object)
    pod.pop("status", None)
    metadata = pod.setdefault("metadata", {})
    for key in _DROP_METADATA:
        metadata.pop(key, None)
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    return pod


def pod_from_finding(finding: Finding) -> dict[str, Any]:
    """A pod with what GuardDuty recorded: containers, host namespaces, hostPath volumes."""
    workload = finding.workload
    if workload is None or not workload.containers:
        raise ValueError("the finding records no containers to replay")
    volumes = [
        {"name": v.name or f"host-{i}", "hostPath": {"path": v.host_path}}
        for i, v in enumerate(workload.volumes)
        if v.host_path
    ]
    containers = []
    for index, container in enumerate(workload.containers):
        spec: dict[str, Any] = {"name": container.name or f"c{index}", "image": container.image or "busybox"}
        if container.privileged is not None or container.allow_privilege_escalation is not None:
            spec["securityContext"] = {
                k: v
                for k, v in (
                    ("privileged", container.privileged),
                    ("allowPrivilegeEscalation", container.allow_privilege_escalation),
                )
                if v is not None
            }
        names = {v["name"] for v in volumes}
        mounts = [
            {"name": m.name, "mountPath": m.mount_path}
            for m in container.volume_mounts
            if m.name in names and m.mount_path
        ]
        if mounts:
            spec["volumeMounts"] = mounts
        containers.append(spec)
    pod_spec: dict[str, Any] = {"containers": containers}
    for field, value in (
        ("hostNetwork", workload.host_network),
        ("hostPID", workload.host_pid),
        ("hostIPC", workload.host_ipc),
    ):
        if value:
            pod_spec[field] = True
    if volumes:
        pod_spec["volumes"] = volumes
    if workload.service_account:
        pod_spec["serviceAccountName"] = workload.service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": workload.name or "replay"},
        "spec": pod_spec,
    }


def audit_pod_request(hunt: dict[str, Any] | None, namespace: str, name: str | None) -> dict[str, Any] | None:
    """The `requestObject` of the attacker's pod create in the hunt's Kubernetes audit events, if recorded."""
    candidates = []
    for event in (hunt or {}).get("events") or []:
        raw = event.get("raw") if isinstance(event, dict) else None
        if not isinstance(raw, dict):
            continue
        ref = raw.get("objectRef") or {}
        body = raw.get("requestObject")
        if (
            raw.get("verb") == "create"
            and ref.get("resource") == "pods"
            and not ref.get("subresource")
            and ref.get("namespace") == namespace
            and isinstance(body, dict)
        ):
            candidates.append(
                (ref.get("name") == name or (body.get("metadata") or {}).get("name") == name, body)
            )
    candidates.sort(key=lambda c: not c[0])
    return candidates[0][1] if candidates else None


def classify(status: int, message: str) -> str:
    if status in (200, 201):
        return "admitted"
    if status == 403 and "PodSecurity" in message:
        return "proven"
    if status == 403 and "cannot create resource" in message:
        return "denied-by-rbac"
    return "error"


def verdict_text(proof: dict[str, Any]) -> str:
    """One line for a summary: proven, or why not (an RBAC refusal is named as such, never as a proof)."""
    status, result = proof.get("status"), proof.get("result")
    if result == "proven":
        return f"proven: Pod Security admission rejected the attacker's pod spec ({status})"
    if result == "denied-by-rbac":
        return f"not proven: RBAC refused the replay ({status}) before admission could judge the pod"
    if result == "admitted":
        return "not proven: the API server admitted the attacker's pod spec (dry run, nothing stored)"
    return f"not proven: the replay answered {status}: {proof.get('message')}"


def replay_pod_create(
    api: Any, namespace: str, pod: dict[str, Any], identity: dict[str, Any], source: str
) -> dict[str, Any]:
    """Send the pod create through `api` (the responder) with dryRun=All; return the proof record.

    `identity` is the attacker's, recorded for the report. Never raises for a 4xx; raises eksir errors only
    when the API server cannot be reached at all.
    """
    body = copy.deepcopy(pod)
    original = (body.get("metadata") or {}).get("name")
    body.setdefault("metadata", {})["name"] = f"eksir-replay-{secrets.token_hex(4)}"
    body["metadata"]["namespace"] = namespace
    at = datetime.now(UTC)
    status, message = dry_run_create_pod(api, namespace, body, "replay the attacker's pod creation")
    return {
        "at": at.isoformat().replace("+00:00", "Z"),
        "identity": identity,
        "replayed_by": whoami(api),
        "request": {
            "method": "POST",
            "path": f"/api/v1/namespaces/{namespace}/pods",
            "dryRun": "All",
            "original_name": original,
            "pod": body,
            "pod_source": source,
        },
        "status": status,
        "message": message,
        "result": classify(status, message),
    }
