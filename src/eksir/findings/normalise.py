"""Turn one canonical (wire-cased) GuardDuty finding dict into the `Finding` model.

Input here has already been re-keyed by the botocore shape walk, but values are still untrusted: any field
may be missing, `null`, or of the wrong type (hand-edited JSON, a newer GuardDuty, a mangled export). Every
read goes through a typed accessor that answers `None` instead of failing, so a finding with one odd field
still reaches the responder; only a finding with no usable type or id is refused.
"""

from __future__ import annotations

from typing import Any

from eksir.errors import BadInputError
from eksir.findings.actor import classify_actor
from eksir.findings.decode import one_line
from eksir.findings.family import family_of
from eksir.findings.runtime import container_of, instance_id_of, runtime_of
from eksir.findings.sequence import sequence_cluster, sequence_of
from eksir.findings.timestamps import parse_timestamp
from eksir.findings.trusted import trusted
from eksir.models.finding import (
    ApiCall,
    Cluster,
    Container,
    Finding,
    SourceFormat,
    Volume,
    VolumeMount,
    Workload,
)
from eksir.models.raw import RawFinding


def _obj(parent: Any, key: str) -> dict[str, Any] | None:
    value = parent.get(key) if type(parent) is dict else None
    return value if type(value) is dict else None


def _str(parent: dict[str, Any] | None, key: str) -> str | None:
    if parent is None:
        return None
    value = parent.get(key)
    return value if type(value) is str else _number_text(value)


def _number_text(value: Any) -> str | None:
    if type(value) is int or type(value) is float:  # e.g. an ASN written as a number
        return str(value)
    return None


def _texts(parent: dict[str, Any] | None, keys: tuple[str, ...]) -> list[str | None]:
    """`_str` for several keys of one dict in one call: per-field calls were the reader's largest cost."""
    if parent is None:
        return [None] * len(keys)
    return [
        value if type(value) is str else None if value is None else _number_text(value)
        for value in map(parent.get, keys)
    ]


def _bool(parent: dict[str, Any] | None, key: str) -> bool | None:
    value = parent.get(key) if parent is not None else None
    return value if type(value) is bool else None


def _int(parent: dict[str, Any] | None, key: str) -> int | None:
    value = parent.get(key) if parent is not None else None
    if type(value) is float and value.is_integer():
        return int(value)
    return value if type(value) is int else None


def _float(parent: dict[str, Any] | None, key: str) -> float | None:
    value = parent.get(key) if parent is not None else None
    return float(value) if type(value) is int or type(value) is float else None


def _strs(parent: dict[str, Any] | None, key: str) -> tuple[str, ...]:
    value = parent.get(key) if parent is not None else None
    if type(value) is not list:
        return ()
    return tuple([item for item in value if type(item) is str])


def _dicts(parent: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    value = parent.get(key) if parent is not None else None
    if type(value) is not list:
        return []
    return [item for item in value if type(item) is dict]


def build_finding(
    wire: dict[str, Any], source: SourceFormat, where: str, text: bytes | None = None
) -> Finding:
    """The `Finding` for one wire-cased dict; raise `BadInputError` when it has no type or no id.

    `text`, when given, is `wire` as JSON text: `raw` keeps it instead of the dict (see `RawFinding`).
    """
    finding_type = wire.get("type")
    if type(finding_type) is not str or not finding_type:
        raise BadInputError(f"{where}: finding has no 'type' string")
    finding_type = one_line(finding_type)
    arn = _str(wire, "arn")
    finding_id = _str(wire, "id") or (arn.rsplit("/", 1)[-1] if arn else None)
    if not finding_id:
        raise BadInputError(f"{where}: {finding_type} finding has no 'id' or 'arn'")
    finding_id = one_line(finding_id)
    resource = _obj(wire, "resource")
    service = _obj(wire, "service")
    kubernetes = _obj(resource, "kubernetesDetails")
    user = _obj(kubernetes, "kubernetesUserDetails")
    keys = _obj(resource, "accessKeyDetails")
    title, description, account_id, region, partition = _texts(wire, _FINDING_KEYS)
    resource_type = _str(resource, "resourceType")
    extras = _extras(resource, service)
    return trusted(
        Finding,
        {
            "id": finding_id,
            "arn": arn,
            "type": finding_type,
            "family": family_of(finding_type, resource_type),
            "severity": _float(wire, "severity"),
            "title": title,
            "description": description,
            "account_id": account_id,
            "region": region,
            "partition": partition,
            "created_at": parse_timestamp(wire.get("createdAt")),
            "updated_at": parse_timestamp(wire.get("updatedAt")),
            "event_first_seen": parse_timestamp(service.get("eventFirstSeen") if service else None),
            "event_last_seen": parse_timestamp(service.get("eventLastSeen") if service else None),
            "count": _int(service, "count"),
            "archived": _bool(service, "archived"),
            "sample": _is_sample(_obj(service, "additionalInfo")),
            "detector_id": _str(service, "detectorId"),
            "source_format": source,
            "resource_type": resource_type,
            **extras,
            "cluster": _cluster(_obj(resource, "eksClusterDetails")) or sequence_cluster(extras["sequence"]),
            "workload": _workload(_obj(kubernetes, "kubernetesWorkloadDetails")),
            "actor": classify_actor(user, keys) if user is not None or keys is not None else None,
            "api_call": _api_call(_obj(_obj(service, "action"), "kubernetesApiCallAction")),
            "raw": RawFinding(text=text) if text is not None else RawFinding(wire),
        },
    )


def _extras(resource: dict[str, Any] | None, service: dict[str, Any] | None) -> dict[str, Any]:
    """The fields only runtime findings and attack sequences carry (None for the audit-log findings)."""
    return {
        "instance_id": instance_id_of(resource),
        "container": container_of(resource),
        "runtime": runtime_of(service),
        "sequence": sequence_of(service),
    }


_FINDING_KEYS = ("title", "description", "accountId", "region", "partition")


def _is_sample(info: dict[str, Any] | None) -> bool:
    if info is None:
        return False
    sample = info.get("sample")
    return sample is True or (type(sample) is str and sample.lower() == "true")


def _cluster(details: dict[str, Any] | None) -> Cluster | None:
    if details is None:
        return None
    arn, name, vpc_id, status = _texts(details, _CLUSTER_KEYS)
    name = name or (arn.rsplit("/", 1)[-1] if arn and "cluster/" in arn else None)
    if not name:
        return None
    tags = {}
    for tag in _dicts(details, "tags"):
        key, value = _texts(tag, _TAG_KEYS)
        if key is not None:
            tags[key] = value or ""
    created_at = parse_timestamp(details.get("createdAt"))
    return trusted(
        Cluster,
        {
            "name": name,
            "arn": arn,
            "vpc_id": vpc_id,
            "status": status,
            "created_at": created_at,
            "tags": tags,
        },
    )


_CLUSTER_KEYS = ("arn", "name", "vpcId", "status")
_TAG_KEYS = ("key", "value")
_WORKLOAD_KEYS = ("namespace", "name", "uid", "type", "serviceAccountName")
_CONTAINER_KEYS = ("name", "image", "imagePrefix")
_MOUNT_KEYS = ("name", "mountPath")
_CALL_KEYS = ("verb", "requestUri", "userAgent", "resource", "subresource", "namespace", "resourceName")
_ORGANIZATION_KEYS = ("asn", "asnOrg", "isp", "org")
_COUNTRY_KEYS = ("countryCode", "countryName")


def _workload(details: dict[str, Any] | None) -> Workload | None:
    if details is None:
        return None
    namespace, name, uid, kind, service_account = _texts(details, _WORKLOAD_KEYS)
    return trusted(
        Workload,
        {
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "type": kind,
            "service_account": service_account,
            "host_network": _bool(details, "hostNetwork"),
            "host_pid": _bool(details, "hostPID"),
            "host_ipc": _bool(details, "hostIPC"),
            "containers": tuple([_container(item) for item in _dicts(details, "containers")]),
            "volumes": tuple([_volume(item) for item in _dicts(details, "volumes")]),
        },
    )


def _volume(item: dict[str, Any]) -> Volume:
    return trusted(Volume, {"name": _str(item, "name"), "host_path": _str(_obj(item, "hostPath"), "path")})


def _container(item: dict[str, Any]) -> Container:
    name, image, image_prefix = _texts(item, _CONTAINER_KEYS)
    security = _obj(item, "securityContext")
    mounts = []
    for mount in _dicts(item, "volumeMounts"):
        mount_name, mount_path = _texts(mount, _MOUNT_KEYS)
        mounts.append(trusted(VolumeMount, {"name": mount_name, "mount_path": mount_path}))
    return trusted(
        Container,
        {
            "name": name,
            "image": image,
            "image_prefix": image_prefix,
            "privileged": _bool(security, "privileged"),
            "allow_privilege_escalation": _bool(security, "allowPrivilegeEscalation"),
            "volume_mounts": tuple(mounts),
        },
    )


def _api_call(action: dict[str, Any] | None) -> ApiCall | None:
    if action is None:
        return None
    remote = _obj(action, "remoteIpDetails")
    verb, request_uri, user_agent, resource, subresource, namespace, resource_name = _texts(
        action, _CALL_KEYS
    )
    asn, asn_org, isp, org = _texts(_obj(remote, "organization"), _ORGANIZATION_KEYS)
    country_code, country_name = _texts(_obj(remote, "country"), _COUNTRY_KEYS)
    return trusted(
        ApiCall,
        {
            "verb": verb,
            "request_uri": request_uri,
            "status_code": _int(action, "statusCode"),
            "user_agent": user_agent,
            "source_ips": _strs(action, "sourceIPs"),
            "remote_ip": _str(remote, "ipAddressV4") or _str(remote, "ipAddressV6"),
            "resource": resource,
            "subresource": subresource,
            "namespace": namespace,
            "resource_name": resource_name,
            "asn": asn,
            "asn_org": asn_org,
            "isp": isp,
            "org": org,
            "country_code": country_code,
            "country_name": country_name,
            "city": _str(_obj(remote, "city"), "cityName"),
        },
    )
