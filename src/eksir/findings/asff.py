"""Rebuild a GuardDuty finding (wire layout) from the Security Hub ASFF finding GuardDuty produced.

Security Hub keeps GuardDuty's details only as `ProductFields`: a flat map of string values under slash
paths built from the camelCase wire names (`aws/guardduty/service/count` = "74"). No public ASFF example of
a Kubernetes finding shows how list items are flattened, so list indices are read in every plausible
spelling (`containers/0/name`, `containers/[0]/name`, `containers[0]/name`, `containers.0.name`) and the
tree is rebuilt generically. Types are restored later by the botocore shape walk. Top-level ASFF fields
(`Id`, `Types`, `Severity.Product`, `AwsAccountId`, `Resources[]`, `Sample`) then fill in what GuardDuty
identifies findings by; they are authoritative for identity, `ProductFields` for details.
"""

from __future__ import annotations

import re
from typing import Any

from eksir.findings.asff_sequence import fill_sequence

_PREFIX = "aws/guardduty/"
_MAX_SEGMENTS = 32  # deeper than any GuardDuty shape; refuses pathological keys instead of recursing on them
_INDEXED = re.compile(r"^(?P<key>[^\[\]]*)\[(?P<index>\d+)\]$")


def asff_to_wire(asff: dict[str, Any]) -> dict[str, Any]:
    """A wire-layout finding dict (strings not yet coerced) built from one GuardDuty ASFF finding."""
    fields = asff.get("ProductFields")
    tree = _unflatten(fields) if isinstance(fields, dict) else {}
    wire: dict[str, Any] = tree if isinstance(tree, dict) else {}
    arn = _text(asff.get("Id")) or ""
    arn_parts = arn.split(":")
    if arn.startswith("arn:") and len(arn_parts) >= 6:
        wire["arn"] = arn
        wire["id"] = arn.rsplit("/", 1)[-1]
        wire.setdefault("partition", arn_parts[1])
        wire.setdefault("region", arn_parts[3])
    elif arn:
        wire["id"] = arn
    _set(wire, "type", _guardduty_type(asff))
    severity = asff.get("Severity")
    if isinstance(severity, dict):
        _set(wire, "severity", severity.get("Product", severity.get("Original")))
    _set(wire, "accountId", _text(asff.get("AwsAccountId")))
    _set(wire, "region", _text(asff.get("Region")))
    for source, target in (("CreatedAt", "createdAt"), ("UpdatedAt", "updatedAt"), ("Title", "title")):
        _set(wire, target, asff.get(source))
    _set(wire, "description", asff.get("Description"))
    _fill_service(wire, asff)
    _fill_cluster(wire, asff.get("Resources"))
    fill_sequence(wire, asff)
    return wire


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def _guardduty_type(asff: dict[str, Any]) -> str | None:
    """`TTPs/PrivilegeEscalation/PrivilegeEscalation:Kubernetes-PrivilegedContainer` -> the GuardDuty type.

    The ASFF type is a category path whose last segment is the GuardDuty type with its one `/` written as
    `-`; the resource part before it (`Kubernetes`, `EC2`, `IAMUser`) never contains a `-`.
    """
    candidates: list[Any] = []
    for holder in (asff, asff.get("FindingProviderFields")):
        if isinstance(holder, dict) and isinstance(holder.get("Types"), list):
            candidates.extend(holder["Types"])
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        last = candidate.rsplit("/", 1)[-1]
        purpose, colon, rest = last.partition(":")
        if colon and "-" in rest:
            resource, _, name = rest.partition("-")
            return f"{purpose}:{resource}/{name}"
    return None


def _fill_service(wire: dict[str, Any], asff: dict[str, Any]) -> None:
    service = wire.get("service")
    if not isinstance(service, dict):
        service = wire["service"] = {}
    generator = _text(asff.get("GeneratorId"))
    if generator and "detector/" in generator:
        service.setdefault("detectorId", generator.rsplit("/", 1)[-1])
    if isinstance(asff.get("Sample"), bool):
        info = service.get("additionalInfo")
        if not isinstance(info, dict):
            info = service["additionalInfo"] = {}
        info.setdefault("sample", asff["Sample"])


def _fill_cluster(wire: dict[str, Any], resources: Any) -> None:
    """ASFF `AwsEksCluster` resource -> `resource.eksClusterDetails`, where ProductFields left gaps."""
    if not isinstance(resources, list):
        return
    for item in resources:
        if not isinstance(item, dict) or item.get("Type") != "AwsEksCluster":
            continue
        resource = wire.get("resource")
        if not isinstance(resource, dict):
            resource = wire["resource"] = {}
        resource.setdefault("resourceType", "EKSCluster")
        cluster = resource.get("eksClusterDetails")
        if not isinstance(cluster, dict):
            cluster = resource["eksClusterDetails"] = {}
        details = item.get("Details")
        eks = details.get("AwsEksCluster") if isinstance(details, dict) else None
        eks = eks if isinstance(eks, dict) else {}
        arn = _text(eks.get("Arn")) or _text(item.get("Id"))
        _setdefault(cluster, "arn", arn)
        _setdefault(cluster, "name", _text(eks.get("Name")) or (arn.rsplit("/", 1)[-1] if arn else None))
        _setdefault(cluster, "status", _text(eks.get("ClusterStatus")))
        tags = item.get("Tags")
        if isinstance(tags, dict) and "tags" not in cluster:
            cluster["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
        return


def _setdefault(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and target.get(key) is None:
        target[key] = value


def _unflatten(fields: dict[str, Any]) -> Any:
    """`{"a/b/0/c": "x"}` -> `{"a": {"b": [{"c": "x"}]}}` for the keys under `aws/guardduty/`."""
    root: dict[Any, Any] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not key.startswith(_PREFIX):
            continue
        path = _segments(key[len(_PREFIX) :])
        if not path or len(path) > _MAX_SEGMENTS:
            continue
        node = root
        for segment in path[:-1]:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = node[segment] = {}
            node = child
        if not isinstance(node.get(path[-1]), dict):  # a leaf never overwrites a deeper subtree
            node[path[-1]] = value
    return _listify(root, 0)


def _segments(path: str) -> list[str | int]:
    """Split a flattened key, turning every spelling of a list index into an int segment."""
    out: list[str | int] = []
    for part in re.split(r"[/.]", path) if "/" not in path else path.split("/"):
        match = _INDEXED.match(part)
        if part.isdigit():
            out.append(int(part))
        elif part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            out.append(int(part[1:-1]))
        elif match:
            if match["key"]:
                out.append(match["key"])
            out.append(int(match["index"]))
        elif part:
            out.append(part)
    return out


def _listify(node: Any, depth: int) -> Any:
    """Dicts whose keys are all ints become lists, in index order (gaps closed, no giant allocations)."""
    if not isinstance(node, dict) or depth > _MAX_SEGMENTS:
        return node
    converted = {key: _listify(value, depth + 1) for key, value in node.items()}
    if converted and all(isinstance(key, int) for key in converted):
        return [converted[key] for key in sorted(converted)]
    return {str(key): value for key, value in converted.items()}
