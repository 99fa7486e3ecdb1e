"""Turn one canonical (wire-cased) GuardDuty finding dict into the `Finding` model.

Input here has already been re-keyed by the botocore shape walk, but values are still untrusted: any field
may be missing, `null`, or of the wrong type (hand-edited JSON, a newer GuardDuty, a mangled export). Every
read goes through a typed accessor that answers `None` instead of failing, so a finding with one odd field
still reaches the responder; only a finding with no usable type or id is refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from eksir.errors import BadInputError
from eksir.findings.actor import classify_actor
from eksir.findings.decode import one_line
from eksir.findings.family import family_of
from eksir.findings.timestamps import parse_timestamp
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


def _obj(parent: Any, key: str) -> dict[str, Any] | None:
    value = parent.get(key) if type(parent) is dict else None
    return value if type(value) is dict else None


def _str(parent: dict[str, Any] | None, key: str) -> str | None:
    if parent is None:
        return None
    value = parent.get(key)
    if type(value) is str:
        return value
    if type(value) is int or type(value) is float:  # e.g. an ASN written as a number
        return str(value)
    return None


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
    return tuple(item for item in value if type(item) is str)


def _dicts(parent: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    value = parent.get(key) if parent is not None else None
    if type(value) is not list:
        return []
    return [item for item in value if type(item) is dict]


def build_finding(wire: dict[str, Any], source: SourceFormat, where: str) -> Finding:
    """The `Finding` for one wire-cased dict; raise `BadInputError` when it has no type or no id."""
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
    info = _obj(service, "additionalInfo")
    try:
        return Finding(
            id=finding_id,
            arn=arn,
            type=finding_type,
            family=family_of(finding_type, _str(resource, "resourceType")),
            severity=_float(wire, "severity"),
            title=_str(wire, "title"),
            description=_str(wire, "description"),
            account_id=_str(wire, "accountId"),
            region=_str(wire, "region"),
            partition=_str(wire, "partition"),
            created_at=parse_timestamp(wire.get("createdAt")),
            updated_at=parse_timestamp(wire.get("updatedAt")),
            event_first_seen=parse_timestamp(service.get("eventFirstSeen") if service else None),
            event_last_seen=parse_timestamp(service.get("eventLastSeen") if service else None),
            count=_int(service, "count"),
            archived=_bool(service, "archived"),
            sample=_is_sample(info),
            detector_id=_str(service, "detectorId"),
            source_format=source,
            resource_type=_str(resource, "resourceType"),
            cluster=_cluster(_obj(resource, "eksClusterDetails")),
            workload=_workload(_obj(kubernetes, "kubernetesWorkloadDetails")),
            actor=classify_actor(user, keys) if user is not None or keys is not None else None,
            api_call=_api_call(_obj(_obj(service, "action"), "kubernetesApiCallAction")),
            raw=wire,
        )
    except ValidationError as exc:  # defensive: the accessors above should make this unreachable
        raise BadInputError(
            f"{where}: finding {finding_id} has unusable fields ({exc.error_count()})"
        ) from None


def _is_sample(info: dict[str, Any] | None) -> bool:
    if info is None:
        return False
    sample = info.get("sample")
    return sample is True or (type(sample) is str and sample.lower() == "true")


def _cluster(details: dict[str, Any] | None) -> Cluster | None:
    if details is None:
        return None
    arn = _str(details, "arn")
    name = _str(details, "name") or (arn.rsplit("/", 1)[-1] if arn and "cluster/" in arn else None)
    if not name:
        return None
    tags = {}
    for tag in _dicts(details, "tags"):
        key, value = _str(tag, "key"), _str(tag, "value")
        if key is not None:
            tags[key] = value or ""
    return Cluster(
        name=name,
        arn=arn,
        vpc_id=_str(details, "vpcId"),
        status=_str(details, "status"),
        created_at=parse_timestamp(details.get("createdAt")),
        tags=tags,
    )


def _workload(details: dict[str, Any] | None) -> Workload | None:
    if details is None:
        return None
    return Workload(
        namespace=_str(details, "namespace"),
        name=_str(details, "name"),
        uid=_str(details, "uid"),
        type=_str(details, "type"),
        service_account=_str(details, "serviceAccountName"),
        host_network=_bool(details, "hostNetwork"),
        host_pid=_bool(details, "hostPID"),
        host_ipc=_bool(details, "hostIPC"),
        containers=tuple(_container(item) for item in _dicts(details, "containers")),
        volumes=tuple(
            Volume(name=_str(item, "name"), host_path=_str(_obj(item, "hostPath"), "path"))
            for item in _dicts(details, "volumes")
        ),
    )


def _container(item: dict[str, Any]) -> Container:
    security = _obj(item, "securityContext")
    return Container(
        name=_str(item, "name"),
        image=_str(item, "image"),
        image_prefix=_str(item, "imagePrefix"),
        privileged=_bool(security, "privileged"),
        allow_privilege_escalation=_bool(security, "allowPrivilegeEscalation"),
        volume_mounts=tuple(
            VolumeMount(name=_str(mount, "name"), mount_path=_str(mount, "mountPath"))
            for mount in _dicts(item, "volumeMounts")
        ),
    )


def _api_call(action: dict[str, Any] | None) -> ApiCall | None:
    if action is None:
        return None
    remote = _obj(action, "remoteIpDetails")
    organization = _obj(remote, "organization")
    country = _obj(remote, "country")
    return ApiCall(
        verb=_str(action, "verb"),
        request_uri=_str(action, "requestUri"),
        status_code=_int(action, "statusCode"),
        user_agent=_str(action, "userAgent"),
        source_ips=_strs(action, "sourceIPs"),
        remote_ip=_str(remote, "ipAddressV4") or _str(remote, "ipAddressV6"),
        resource=_str(action, "resource"),
        subresource=_str(action, "subresource"),
        namespace=_str(action, "namespace"),
        resource_name=_str(action, "resourceName"),
        asn=_str(organization, "asn"),
        asn_org=_str(organization, "asnOrg"),
        isp=_str(organization, "isp"),
        org=_str(organization, "org"),
        country_code=_str(country, "countryCode"),
        country_name=_str(country, "countryName"),
        city=_str(_obj(remote, "city"), "cityName"),
    )
