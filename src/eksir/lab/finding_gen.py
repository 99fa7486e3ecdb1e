"""The GuardDuty finding for the lab's privileged pod, as EventBridge delivers it (camelCase `detail`).

GuardDuty builds this finding from the audit event of the pod create, so every id here is copied from that
event and from the pod the API returned: pod uid, namespace, node, user block, source IP, user agent, and
createdAt = the audit event's time. The envelope and field names follow the real EventBridge sample in
shared/data/real/guardduty and the field table in finding-schema-notes.md.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from eksir.lab.aws_seed import AwsInventory
from eksir.lab.cloudtrail_gen import random_uuid

FINDING_TYPE = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
TITLE = "Privileged container with root level access launched on the EKS Cluster."


def _ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    statuses = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses", [])}
    result = []
    for container in pod["spec"]["containers"]:
        context = container.get("securityContext", {})
        result.append(
            {
                "containerRuntime": "containerd",
                "id": statuses.get(container["name"], {})
                .get("containerID", "")
                .removeprefix("containerd://"),
                "name": container["name"],
                "image": container["image"],
                "imagePrefix": "",
                "volumeMounts": [
                    {"name": m["name"], "mountPath": m["mountPath"]}
                    for m in container.get("volumeMounts", [])
                ],
                "securityContext": {
                    "privileged": bool(context.get("privileged", False)),
                    "allowPrivilegeEscalation": bool(context.get("allowPrivilegeEscalation", True)),
                },
            }
        )
    return result


def _workload(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod["spec"]
    return {
        "name": pod["metadata"]["name"],
        "type": "pods",
        "uid": pod["metadata"]["uid"],
        "namespace": pod["metadata"]["namespace"],
        "serviceAccountName": spec.get("serviceAccountName", "default"),
        "hostNetwork": bool(spec.get("hostNetwork", False)),
        "hostIPC": bool(spec.get("hostIPC", False)),
        "hostPID": bool(spec.get("hostPID", False)),
        "containers": _containers(pod),
        "volumes": [
            {"name": v["name"], "hostPath": {"path": v["hostPath"]["path"]}}
            for v in spec.get("volumes", [])
            if "hostPath" in v
        ],
    }


def _api_call(event: dict[str, Any]) -> dict[str, Any]:
    ref = event["objectRef"]
    source_ip = event["sourceIPs"][0]
    return {
        "requestUri": event["requestURI"],
        "verb": event["verb"],
        "sourceIPs": [source_ip],
        "userAgent": event.get("userAgent", ""),
        "statusCode": int(event.get("responseStatus", {}).get("code", 201)),
        "resource": ref["resource"],
        "namespace": ref.get("namespace"),
        "resourceName": ref.get("name"),
        "remoteIpDetails": {
            "ipAddressV4": source_ip,
            "organization": {
                "asn": "64496",
                "asnOrg": "EXAMPLE-HOSTING",
                "isp": "Example Hosting",
                "org": "Example Hosting",
            },
            "country": {"countryCode": "NL", "countryName": "Netherlands"},
            "city": {"cityName": "Amsterdam"},
            "geoLocation": {"lat": 52.3759, "lon": 4.8975},
        },
    }


def build_finding(
    inv: AwsInventory,
    pod: dict[str, Any],
    event: dict[str, Any],
    access_key_details: dict[str, str] | None,
    rng: random.Random,
) -> dict[str, Any]:
    """The EventBridge event for this pod create; `access_key_details` is None for SA and OIDC callers."""
    seen = _parse(str(event["stageTimestamp"]))
    created = _ms(seen)
    detector = f"{rng.getrandbits(128):032x}"
    finding_id = f"{rng.getrandbits(128):032x}"
    detail = {
        "schemaVersion": "2.0",
        "accountId": inv.account_id,
        "region": inv.region,
        "partition": "aws",
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{inv.region}:{inv.account_id}:detector/{detector}/finding/{finding_id}",
        "type": FINDING_TYPE,
        "resource": _resource(inv, pod, event, access_key_details),
        "service": _service(detector, event, created),
        "severity": 8,
        "createdAt": created,
        "updatedAt": created,
        "title": TITLE,
        "description": (
            f"A privileged container with root level access was launched on EKS Cluster {inv.cluster_name}. "
            "If this behavior is not expected, it may indicate that your credentials are compromised."
        ),
    }
    return {
        "version": "0",
        "id": random_uuid(rng),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": inv.account_id,
        "time": seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": inv.region,
        "resources": [],
        "detail": detail,
    }


def _resource(
    inv: AwsInventory, pod: dict[str, Any], event: dict[str, Any], access_key_details: dict[str, str] | None
) -> dict[str, Any]:
    """The finding's `resource`: the cluster, the caller as Kubernetes saw it, the pod, the AWS key if any."""
    user = event["user"]
    resource: dict[str, Any] = {
        "resourceType": "EKSCluster",
        "eksClusterDetails": {
            "name": inv.cluster_name,
            "arn": inv.cluster_arn,
            "vpcId": inv.vpc_id,
            "status": "ACTIVE",
            "tags": [{"key": "environment", "value": "production"}, {"key": "owner", "value": "platform"}],
            "createdAt": round(inv.cluster_created_at.timestamp(), 3),
        },
        "kubernetesDetails": {
            "kubernetesUserDetails": {
                "username": user["username"],
                "uid": user.get("uid"),
                "groups": user.get("groups", []),
                "sessionName": user.get("extra", {}).get("sessionName", []),
            },
            "kubernetesWorkloadDetails": _workload(pod),
        },
    }
    if access_key_details is not None:
        resource["accessKeyDetails"] = access_key_details
    return resource


def _service(detector: str, event: dict[str, Any], created: str) -> dict[str, Any]:
    """The finding's `service`: the detector and the API call, first and last seen at the pod create."""
    return {
        "serviceName": "guardduty",
        "detectorId": detector,
        "action": {"actionType": "KUBERNETES_API_CALL", "kubernetesApiCallAction": _api_call(event)},
        "resourceRole": "TARGET",
        "additionalInfo": {"value": "{}", "type": "default"},
        "evidence": None,
        "eventFirstSeen": created,
        "eventLastSeen": created,
        "archived": False,
        "count": 1,
    }
