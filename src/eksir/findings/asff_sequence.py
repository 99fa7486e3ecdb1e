"""Security Hub's `Detection.Sequence` (ASFF) -> GuardDuty's `service.detection.sequence` (wire layout).

Security Hub carries an attack sequence's correlation in the top-level ASFF `Detection.Sequence` (PascalCase:
`Uid`, `Actors`, `Endpoints`, `Signals`, `SequenceIndicators`), with signals identified by `Id` and naming
resources by `ResourceIds`, and the sequence's resources as ordinary ASFF `Resources[]`. This module renames
those to the GuardDuty wire names (the botocore shape walk then fixes the casing of everything inside) and
maps the ASFF resource types onto `ResourceV2.resourceType`. ASFF has no Kubernetes workload type: a
workload is read from an `Other` resource whose `Details.Other` says `resourceType: KUBERNETES_WORKLOAD`
(inferred, no public ASFF attack-sequence sample exists; see tests/data/findings/new-types/SOURCES.md).
"""

from __future__ import annotations

from typing import Any

_ASFF_TYPES = {
    "AwsEksCluster": "EKS_CLUSTER",
    "AwsEc2Instance": "EC2_INSTANCE",
    "AwsIamAccessKey": "ACCESS_KEY",
    "Container": "CONTAINER",
    "AwsEc2NetworkInterface": "EC2_NETWORK_INTERFACE",
    "AwsS3Bucket": "S3_BUCKET",
}
_MAX_ITEMS = 1000


def fill_sequence(wire: dict[str, Any], asff: dict[str, Any]) -> None:
    """Put the ASFF `Detection.Sequence` (if any) into `wire` as `service.detection.sequence`."""
    detection = asff.get("Detection")
    sequence = detection.get("Sequence") if isinstance(detection, dict) else None
    if not isinstance(sequence, dict):
        return
    service = wire.setdefault("service", {})
    if not isinstance(service, dict):
        return
    target = {key: value for key, value in sequence.items() if key != "Signals"}
    target["Signals"] = [_signal(item) for item in _items(sequence.get("Signals"))]
    target["Resources"] = [r for item in _items(asff.get("Resources")) if (r := _resource(item))]
    service["detection"] = {"sequence": target}


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value[:_MAX_ITEMS] if isinstance(item, dict)] if isinstance(value, list) else []


def _signal(item: dict[str, Any]) -> dict[str, Any]:
    signal = {key: value for key, value in item.items() if key not in ("Id", "ResourceIds", "Title")}
    signal["uid"] = item.get("Id")
    signal["resourceUids"] = item.get("ResourceIds")
    signal.setdefault("Name", item.get("Title"))
    return signal


def _resource(item: dict[str, Any]) -> dict[str, Any] | None:
    asff_type, uid = item.get("Type"), item.get("Id")
    details = _dict(item.get("Details"))
    if asff_type == "Other":
        other = _dict(details.get("Other"))
        if other.get("resourceType") != "KUBERNETES_WORKLOAD":
            return None
        workload = {key: other.get(key) for key in ("namespace", "type", "containerUids")}
        return {
            "uid": uid,
            "name": other.get("name"),
            "resourceType": "KUBERNETES_WORKLOAD",
            "data": {"kubernetesWorkload": workload},
        }
    kind = _ASFF_TYPES.get(asff_type) if isinstance(asff_type, str) else None
    if kind is None:
        return None
    resource: dict[str, Any] = {"uid": uid, "resourceType": kind, "region": item.get("Region")}
    if kind == "CONTAINER":
        container = _dict(details.get("Container"))
        resource["name"] = container.get("Name")
        resource["data"] = {"container": {"image": container.get("ImageName")}}
    elif kind == "EKS_CLUSTER":
        cluster = _dict(details.get("AwsEksCluster"))
        resource["name"] = cluster.get("Name")
    return resource


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
