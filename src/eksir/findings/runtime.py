"""Runtime Monitoring details of a finding: the process tree, what it did, and the container and node.

A privileged container's escape is seen by the GuardDuty agent on the node, not by the audit log. Its
findings carry `service.runtimeDetails` (`process` with its `lineage`, and a `context` saying what the
process did: the file operation and path, the mount, the socket, the runc binary, the release agent) and
`resource.containerDetails` / `resource.instanceDetails`, which lead to the pod and the node. Shapes are
botocore's `RuntimeDetails`, `ProcessDetails`, `LineageObject`, `RuntimeContext` and `Container`.
"""

from __future__ import annotations

from typing import Any

from eksir.findings.bounded import build, dicts, integer, moment, obj, text, texts
from eksir.models.finding import Runtime, RuntimeContainer, RuntimeProcess

MAX_LINEAGE = 64
_CONTEXT_KEYS = (
    "fileOperation",
    "filePath",
    "mountSource",
    "mountTarget",
    "fileSystemType",
    "socketPath",
    "runcBinaryPath",
    "releaseAgentPath",
    "scriptPath",
    "libraryPath",
    "ldPreloadValue",
    "moduleName",
    "moduleFilePath",
    "threatFilePath",
    "shellHistoryFilePath",
    "addressFamily",
    "ianaProtocolNumber",
    "toolName",
    "toolCategory",
    "serviceName",
    "commandLineExample",
    "modifiedAt",
)


def runtime_of(service: dict[str, Any] | None) -> Runtime | None:
    """`service.runtimeDetails` as a `Runtime`, or None when the finding has none."""
    details = obj(service, "runtimeDetails")
    if details is None:
        return None
    process = obj(details, "process")
    context = obj(details, "context")
    values: dict[str, str] = {}
    for key in _CONTEXT_KEYS:
        value = text(context, key)
        if value is not None:
            values[key] = value
    flags = texts(context, "flags", 32)
    if flags:
        values["flags"] = ",".join(flags)
    return build(
        Runtime,
        process=process_of(process),
        lineage=tuple(
            process_of(item) or build(RuntimeProcess) for item in dicts(process, "lineage", MAX_LINEAGE)
        ),
        context=values,
        modifying_process=process_of(obj(context, "modifyingProcess")),
        target_process=process_of(obj(context, "targetProcess")),
    )


def process_of(item: dict[str, Any] | None) -> RuntimeProcess | None:
    if item is None:
        return None
    return build(
        RuntimeProcess,
        name=text(item, "name"),
        executable_path=text(item, "executablePath"),
        executable_sha256=text(item, "executableSha256"),
        pid=integer(item, "pid"),
        namespace_pid=integer(item, "namespacePid"),
        user=text(item, "user"),
        user_id=integer(item, "userId"),
        euid=integer(item, "euid"),
        pwd=text(item, "pwd"),
        start_time=moment(item, "startTime"),
        uuid=text(item, "uuid"),
        parent_uuid=text(item, "parentUuid"),
    )


def container_of(resource: dict[str, Any] | None) -> RuntimeContainer | None:
    """`resource.containerDetails`: its runtime id finds the pod when the workload is not named."""
    details = obj(resource, "containerDetails")
    if details is None:
        return None
    security = obj(details, "securityContext")
    privileged = security.get("privileged") if security is not None else None
    return build(
        RuntimeContainer,
        runtime=text(details, "containerRuntime"),
        id=text(details, "id"),
        name=text(details, "name"),
        image=text(details, "image"),
        privileged=privileged if type(privileged) is bool else None,
    )


def instance_id_of(resource: dict[str, Any] | None) -> str | None:
    return text(obj(resource, "instanceDetails"), "instanceId")
