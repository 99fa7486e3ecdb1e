"""Authored findings of the types added in issue 19: runtime escapes, the sensitive-mount sibling,
kubectl debug node pods, and attack sequences (EKS, EC2, IAM).

Every field name and nesting comes from botocore's GuardDuty model (`RuntimeDetails`, `ProcessDetails`,
`LineageObject`, `RuntimeContext`, `Container`, `Detection`, `Sequence`, `Signal`, `Actor`, `ResourceV2`,
`ResourceData`, `NetworkEndpoint`, `Indicator`); values follow GuardDuty's documented finding descriptions.
No real attack-sequence or runtime sample exists in ../shared; see data/findings/new-types/SOURCES.md for
where each field came from. The builders take the names they need (pods, nodes, images), so the lab tests
can describe the lab's own objects with the same shapes; `python -m tests.new_findings` rewrites the
fixture files from them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
REGION = "eu-west-1"
DETECTOR = "4cb9a4f1e2d3c4b5a6978877665544aa"
CLUSTER = "prod-payments"
CLUSTER_ARN = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
HERE = Path(__file__).resolve().parent / "data" / "findings" / "new-types"
T0 = "2026-11-20T10:30:00.000Z"
T1 = "2026-11-20T10:42:13.000Z"

RUNTIME_TYPES = {
    "reverse-shell": "Execution:Runtime/ReverseShell",
    "mounts-host-directory": "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
    "docker-socket": "PrivilegeEscalation:Runtime/DockerSocketAccessed",
    "runc-escape": "PrivilegeEscalation:Runtime/RuncContainerEscape",
    "release-agent": "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
}
RUNTIME_CONTEXT: dict[str, dict[str, Any]] = {
    "reverse-shell": {},
    "mounts-host-directory": {
        "mountSource": "/",
        "mountTarget": "/mnt/host",
        "fileSystemType": "ext4",
        "flags": ["MS_BIND"],
    },
    "docker-socket": {"socketPath": "/var/run/docker.sock"},
    "runc-escape": {"runcBinaryPath": "/usr/bin/runc", "fileOperation": "write", "filePath": "/usr/bin/runc"},
    "release-agent": {
        "releaseAgentPath": "/sys/fs/cgroup/rdma/release_agent",
        "fileOperation": "write",
        "filePath": "/sys/fs/cgroup/rdma/release_agent",
    },
}


@dataclass(frozen=True)
class Pod:
    """What a finding says of one pod (and the node it runs on)."""

    namespace: str = "payments"
    name: str = "debug-tools-7d9c4"
    uid: str = "5b0e7b4c-52a6-4c1e-9f3a-0d6b1f2e3a4b"
    image: str = "docker.io/library/ubuntu:24.04"
    container: str = "shell"
    container_id: str = "9f2d7a1c3b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
    instance_id: str = "i-0a1b2c3d4e5f60718"
    service_account: str = "default"
    privileged: bool = True
    host_path: str | None = "/"
    host_pid: bool = True


@dataclass(frozen=True)
class Sequence:
    """The scope of an authored attack sequence."""

    pods: tuple[Pod, ...]
    uid: str = "6a1f0c9e-2d3b-4c5d-8e7f-90a1b2c3d4e5"
    cluster: str = CLUSTER
    cluster_arn: str = CLUSTER_ARN
    access_key: str = "AKIAIOSFODNN7EXAMPLE"
    principal_id: str = "AIDAEXAMPLEDEVUSER01"
    user_name: str = "dev-alice"
    extra: dict[str, Any] = field(default_factory=dict)


def _arn(finding_id: str) -> str:
    return f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/{DETECTOR}/finding/{finding_id}"


def _cluster(name: str = CLUSTER, arn: str = CLUSTER_ARN) -> dict[str, Any]:
    return {
        "name": name,
        "arn": arn,
        "vpcId": "vpc-0a1b2c3d",
        "status": "ACTIVE",
        "tags": [],
        "createdAt": 1679521705.752,
    }


def _process(
    name: str, path: str, pid: int, uuid: str, parent: str, *, lineage: list[Any] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": name,
        "executablePath": path,
        "executableSha256": hashlib.sha256(path.encode()).hexdigest(),
        "pid": pid,
        "namespacePid": pid - 4100,
        "user": "root",
        "userId": 0,
        "euid": 0,
        "pwd": "/",
        "startTime": T0,
        "uuid": uuid,
        "parentUuid": parent,
    }
    if lineage is not None:
        item["lineage"] = lineage
    return item


def _lineage() -> list[dict[str, Any]]:
    return [
        {
            "startTime": T0,
            "namespacePid": 1,
            "userId": 0,
            "name": "bash",
            "pid": 4101,
            "uuid": "a2b3c4d5-0000-4000-8000-000000000002",
            "executablePath": "/usr/bin/bash",
            "euid": 0,
            "parentUuid": "a2b3c4d5-0000-4000-8000-000000000001",
        },
        {
            "startTime": T0,
            "namespacePid": 0,
            "userId": 0,
            "name": "containerd-shim",
            "pid": 3990,
            "uuid": "a2b3c4d5-0000-4000-8000-000000000001",
            "executablePath": "/usr/bin/containerd-shim-runc-v2",
            "euid": 0,
            "parentUuid": "a2b3c4d5-0000-4000-8000-000000000000",
        },
    ]


def workload_details(pod: Pod) -> dict[str, Any]:
    mounts = [{"name": "host-root", "mountPath": "/host"}] if pod.host_path else []
    return {
        "name": pod.name,
        "type": "pods",
        "uid": pod.uid,
        "namespace": pod.namespace,
        "serviceAccountName": pod.service_account,
        "hostNetwork": pod.host_pid,
        "hostIPC": pod.host_pid,
        "hostPID": pod.host_pid,
        "containers": [
            {
                "containerRuntime": "containerd",
                "id": pod.container_id,
                "name": pod.container,
                "image": pod.image,
                "imagePrefix": "",
                "volumeMounts": mounts,
                "securityContext": {"privileged": pod.privileged, "allowPrivilegeEscalation": pod.privileged},
            }
        ],
        "volumes": [{"name": "host-root", "hostPath": {"path": pod.host_path}}] if pod.host_path else [],
    }


def runtime_finding(
    kind: str, pod: Pod, *, finding_id: str, cluster: str = CLUSTER, cluster_arn: str = CLUSTER_ARN
) -> dict[str, Any]:
    """A Runtime Monitoring finding (wire form) for `pod`: `kind` is a key of RUNTIME_TYPES."""
    process = _process(
        "bash",
        "/usr/bin/bash",
        4213,
        "a2b3c4d5-0000-4000-8000-000000000003",
        "a2b3c4d5-0000-4000-8000-000000000002",
        lineage=_lineage(),
    )
    context = copy.deepcopy(RUNTIME_CONTEXT[kind])
    if kind == "release-agent":
        context["modifyingProcess"] = _process(
            "sh",
            "/bin/sh",
            4220,
            "a2b3c4d5-0000-4000-8000-000000000004",
            "a2b3c4d5-0000-4000-8000-000000000003",
        )
    container = {
        "containerRuntime": "containerd",
        "id": pod.container_id,
        "name": pod.container,
        "image": pod.image,
        "imagePrefix": "",
        "securityContext": {"privileged": pod.privileged},
    }
    return {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "id": finding_id,
        "arn": _arn(finding_id),
        "type": RUNTIME_TYPES[kind],
        "severity": 8,
        "createdAt": T1,
        "updatedAt": T1,
        "title": f"{RUNTIME_TYPES[kind].split('/', 1)[1]} observed in container {pod.container}.",
        "description": f"A runtime event in {pod.container} of pod {pod.name} on cluster {cluster}.",
        "resource": {
            "resourceType": "EKSCluster",
            "eksClusterDetails": _cluster(cluster, cluster_arn),
            "kubernetesDetails": {"kubernetesWorkloadDetails": workload_details(pod)},
            "instanceDetails": {
                "instanceId": pod.instance_id,
                "instanceType": "m6i.large",
                "availabilityZone": f"{REGION}a",
            },
            "containerDetails": container,
        },
        "service": {
            "serviceName": "guardduty",
            "detectorId": DETECTOR,
            "featureName": "RuntimeMonitoring",
            "resourceRole": "TARGET",
            "archived": False,
            "count": 1,
            "eventFirstSeen": T1,
            "eventLastSeen": T1,
            "additionalInfo": {"value": "{}", "type": "default"},
            "runtimeDetails": {"process": process, "context": context},
        },
    }


def debug_pod_finding(
    node: str,
    suffix: str,
    *,
    sysadmin: bool,
    user: str = "sre-bob",
    groups: tuple[str, ...] = ("sre-admins", "system:authenticated"),
    finding_id: str = "d0c7e9a1b2c3d4e5f60718293a4b5c6d",
    user_agent: str = "kubectl/v1.34.4 (linux/amd64) kubernetes/a1b2c3d",
    namespace: str = "default",
    image: str = "busybox:1.36",
    uid: str | None = None,
    at: str = T0,
) -> dict[str, Any]:
    """The finding `kubectl debug node/NODE [--profile=sysadmin]` raises (wire form).

    The pod is what kubectl builds (generateNodeDebugPod + the profile): name `node-debugger-NODE-SUFFIX`,
    one container `debugger`, hostPID/hostNetwork/hostIPC, the host's `/` at `/host`; sysadmin adds
    `privileged: true`. With sysadmin GuardDuty reports a privileged container, without it a sensitive mount.
    """
    finding_type = (
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
        if sysadmin
        else "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount"
    )
    name = f"node-debugger-{node}-{suffix}"
    pod = Pod(
        namespace=namespace,
        name=name,
        uid=uid or "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        image=image,
        container="debugger",
        privileged=sysadmin,
        host_path="/",
    )
    workload = workload_details(pod)
    workload["containers"][0]["securityContext"] = {"privileged": True} if sysadmin else {}
    return {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "id": finding_id,
        "arn": _arn(finding_id),
        "type": finding_type,
        "severity": 8,
        "createdAt": at,
        "updatedAt": at,
        "title": "A workload with host access was launched on the EKS Cluster.",
        "description": f"Pod {name} was launched with host namespaces and the host's root mounted.",
        "resource": {
            "resourceType": "EKSCluster",
            "eksClusterDetails": _cluster(),
            "kubernetesDetails": {
                "kubernetesUserDetails": {
                    "username": user,
                    "uid": "",
                    "groups": list(groups),
                    "sessionName": [],
                },
                "kubernetesWorkloadDetails": workload,
            },
        },
        "service": {
            "serviceName": "guardduty",
            "detectorId": DETECTOR,
            "resourceRole": "TARGET",
            "archived": False,
            "count": 1,
            "eventFirstSeen": at,
            "eventLastSeen": at,
            "additionalInfo": {"value": "{}", "type": "default"},
            "action": {
                "actionType": "KUBERNETES_API_CALL",
                "kubernetesApiCallAction": {
                    "requestUri": f"/api/v1/namespaces/{namespace}/pods",
                    "verb": "create",
                    "sourceIPs": ["10.0.12.34"],
                    "userAgent": user_agent,
                    "statusCode": 201,
                    "resource": "pods",
                    "namespace": namespace,
                    "resourceName": name,
                    "remoteIpDetails": {
                        "ipAddressV4": "10.0.12.34",
                        "organization": {"asn": "0"},
                        "country": {},
                        "city": {"cityName": "UNKNOWN"},
                    },
                },
            },
        },
    }


SEQUENCE_TYPES = {
    "eks": "AttackSequence:EKS/CompromisedCluster",
    "ec2": "AttackSequence:EC2/CompromisedInstanceGroup",
    "iam": "AttackSequence:IAM/CompromisedCredentials",
}
INDICATORS = [
    {
        "key": "ATTACK_TACTIC",
        "values": ["Privilege Escalation", "Execution", "Credential Access"],
        "title": "Attack tactics",
    },
    {"key": "HIGH_RISK_API", "values": ["ListSecrets", "GetSecretValue"], "title": "High-risk APIs"},
    {"key": "SUSPICIOUS_PROCESS", "values": ["bash -i"], "title": "Suspicious process"},
    {"key": "MALICIOUS_PACKAGE", "values": ["pkg:npm/left-pad-ng@1.0.3"], "title": "Malicious package"},
    {
        "key": "MISCONFIGURATION",
        "values": ["privileged container", "hostPath /"],
        "title": "Misconfiguration",
    },
    {"key": "REACHABILITY", "values": ["0.0.0.0/0:443"], "title": "Reachable from the internet"},
    {"key": "SENSITIVE_DATA", "values": ["payments/db-credentials"], "title": "Sensitive data"},
    {"key": "VULNERABILITY", "values": ["CVE-2024-21626"], "title": "Vulnerability"},
]


def _sequence_resources(seq: Sequence) -> list[dict[str, Any]]:
    instances = sorted({pod.instance_id for pod in seq.pods})
    resources: list[dict[str, Any]] = [
        {
            "uid": seq.cluster_arn,
            "name": seq.cluster,
            "accountId": ACCOUNT,
            "resourceType": "EKS_CLUSTER",
            "region": REGION,
            "service": "eks",
            "cloudPartition": "aws",
            "tags": [],
            "data": {
                "eksCluster": {
                    "arn": seq.cluster_arn,
                    "status": "ACTIVE",
                    "vpcId": "vpc-0a1b2c3d",
                    "ec2InstanceUids": instances,
                }
            },
        }
    ]
    for pod in seq.pods:
        resources.append(
            {
                "uid": pod.uid,
                "name": pod.name,
                "accountId": ACCOUNT,
                "resourceType": "KUBERNETES_WORKLOAD",
                "region": REGION,
                "service": "eks",
                "cloudPartition": "aws",
                "data": {
                    "kubernetesWorkload": {
                        "containerUids": [pod.container_id],
                        "namespace": pod.namespace,
                        "type": "PODS",
                    }
                },
            }
        )
        resources.append(
            {
                "uid": pod.container_id,
                "name": pod.container,
                "accountId": ACCOUNT,
                "resourceType": "CONTAINER",
                "region": REGION,
                "data": {"container": {"image": pod.image, "imageUid": "sha256:" + "ab" * 32}},
            }
        )
    for instance in instances:
        resources.append(
            {
                "uid": instance,
                "name": instance,
                "accountId": ACCOUNT,
                "resourceType": "EC2_INSTANCE",
                "region": REGION,
                "service": "ec2",
                "data": {"ec2Instance": {"instanceType": "m6i.large", "instanceState": "running"}},
            }
        )
    resources.append(
        {
            "uid": seq.access_key,
            "name": seq.access_key,
            "accountId": ACCOUNT,
            "resourceType": "ACCESS_KEY",
            "region": REGION,
            "data": {
                "accessKey": {
                    "principalId": seq.principal_id,
                    "userName": seq.user_name,
                    "userType": "IAMUser",
                }
            },
        }
    )
    return resources


def _signals(seq: Sequence) -> list[dict[str, Any]]:
    first, second = seq.pods[0], seq.pods[-1]
    return [
        {
            "uid": _arn("5ec0de047c1e4a9b2d3f4e5a6b7c8d9e"),
            "type": "FINDING",
            "severity": 8,
            "name": "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
            "description": f"Privileged pod {first.name} created.",
            "createdAt": T0,
            "updatedAt": T0,
            "firstSeenAt": T0,
            "lastSeenAt": T0,
            "count": 1,
            "resourceUids": [seq.cluster_arn, first.uid],
            "actorIds": ["actor-1"],
            "endpointIds": ["endpoint-1"],
        },
        {
            "uid": "signal-audit-exec-0001",
            "type": "EKS_AUDIT_LOGS",
            "name": "create pods/exec",
            "description": f"Exec into {second.name}.",
            "createdAt": "2026-11-20T10:36:00.000Z",
            "firstSeenAt": "2026-11-20T10:36:00.000Z",
            "lastSeenAt": "2026-11-20T10:36:05.000Z",
            "count": 2,
            "severity": 5,
            "resourceUids": [second.uid],
            "actorIds": ["actor-1"],
            "endpointIds": ["endpoint-1"],
        },
        {
            "uid": _arn("7e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"),
            "type": "FINDING",
            "severity": 8,
            "name": "Execution:Runtime/ReverseShell",
            "description": f"Reverse shell in {second.name}.",
            "createdAt": T1,
            "firstSeenAt": T1,
            "lastSeenAt": T1,
            "count": 1,
            "resourceUids": [second.uid, second.container_id, second.instance_id],
            "endpointIds": ["endpoint-1"],
        },
        {
            "uid": "signal-cloudtrail-0001",
            "type": "CLOUD_TRAIL",
            "name": "secretsmanager:ListSecrets",
            "createdAt": "2026-11-20T10:50:00.000Z",
            "firstSeenAt": "2026-11-20T10:50:00.000Z",
            "lastSeenAt": "2026-11-20T10:51:00.000Z",
            "count": 3,
            "severity": 5,
            "resourceUids": [seq.access_key],
            "actorIds": ["actor-1"],
        },
    ]


def sequence_finding(kind: str, seq: Sequence, *, finding_id: str) -> dict[str, Any]:
    """An attack-sequence finding (wire form); `kind` is a key of SEQUENCE_TYPES."""
    actors = [
        {
            "id": "actor-1",
            "user": {
                "name": seq.user_name,
                "uid": seq.principal_id,
                "type": "IAMUser",
                "credentialUid": seq.access_key,
                "account": {"uid": ACCOUNT, "account": "payments-prod"},
            },
            "session": {"uid": "session-1", "mfaStatus": "DISABLED", "createdTime": T0},
        }
    ]
    endpoints = [
        {
            "id": "endpoint-1",
            "ip": "198.51.100.23",
            "port": 443,
            "location": {"city": "Amsterdam", "country": "Netherlands", "lat": 52.37, "lon": 4.89},
            "autonomousSystem": {"name": "EXAMPLE-HOSTING", "number": 64496},
            "connection": {"direction": "INBOUND"},
        }
    ]
    sequence = {
        "uid": seq.uid,
        "description": "A sequence of actions that compromised the cluster.",
        "actors": actors,
        "resources": _sequence_resources(seq),
        "endpoints": endpoints,
        "signals": _signals(seq),
        "sequenceIndicators": INDICATORS,
        **seq.extra,
    }
    resource: dict[str, Any] = {
        "resourceType": "EKSCluster",
        "eksClusterDetails": _cluster(seq.cluster, seq.cluster_arn),
    }
    if kind == "iam":
        resource = {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": seq.access_key,
                "principalId": seq.principal_id,
                "userName": seq.user_name,
                "userType": "IAMUser",
            },
        }
    elif kind == "ec2":
        resource = {"resourceType": "Instance", "instanceDetails": {"instanceId": seq.pods[0].instance_id}}
    return {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "id": finding_id,
        "arn": _arn(finding_id),
        "type": SEQUENCE_TYPES[kind],
        "severity": 10,
        "createdAt": T1,
        "updatedAt": "2026-11-20T10:52:00.000Z",
        "title": "Potential cluster compromise indicated by a sequence of actions.",
        "description": "A sequence of actions involving 4 signals indicates a possible compromise.",
        "resource": resource,
        "service": {
            "serviceName": "guardduty",
            "detectorId": DETECTOR,
            "archived": False,
            "count": 1,
            "featureName": "ExtendedThreatDetection",
            "eventFirstSeen": T0,
            "eventLastSeen": "2026-11-20T10:51:00.000Z",
            "additionalInfo": {"value": "{}", "type": "default"},
            "detection": {"sequence": sequence},
        },
    }


TWO_PODS = (
    Pod(),
    Pod(
        name="checkout-api-6c8f9d7b5-x2k4q",
        uid="8c1d2e3f-4a5b-4c6d-9e7f-a0b1c2d3e4f5",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/checkout:2.4.1",
        container="api",
        container_id="1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
        instance_id="i-0fedcba9876543210",
        privileged=False,
        host_path=None,
        host_pid=False,
    ),
)


def boto3_form(wire: dict[str, Any]) -> dict[str, Any]:
    """What `aws guardduty get-findings` prints: member names from botocore's model, nulls dropped."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("guardduty")
    return {"Findings": [_member_names(wire, model.shape_for("Finding"))]}


def _member_names(value: Any, shape: Any) -> Any:
    if shape.type_name == "structure" and isinstance(value, dict):
        by_wire = {m.serialization.get("name", n): (n, m) for n, m in shape.members.items()}
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            name, member = by_wire.get(key, (key, None))
            out[name] = item if member is None else _member_names(item, member)
        return out
    if shape.type_name == "list" and isinstance(value, list):
        return [_member_names(item, shape.member) for item in value]
    return value


def eventbridge_form(wire: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "c030d66e-ccae-00a7-b7ec-000000000019",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": wire["updatedAt"][:19] + "Z",
        "region": REGION,
        "resources": [],
        "detail": wire,
    }


def _epoch_ms(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def asff_form(wire: dict[str, Any]) -> dict[str, Any]:
    """Security Hub's view of an attack sequence: `Detection.Sequence` (ASFF names) + `Resources[]`."""
    sequence = wire["service"]["detection"]["sequence"]
    signals = [
        {
            "Id": s["uid"],
            "Type": s["type"],
            "Title": s["name"],
            "Name": s["name"],
            "Count": s.get("count"),
            "Severity": s.get("severity"),
            "CreatedAt": _epoch_ms(s["createdAt"]),
            "FirstSeenAt": _epoch_ms(s["firstSeenAt"]),
            "LastSeenAt": _epoch_ms(s["lastSeenAt"]),
            "ResourceIds": s.get("resourceUids", []),
            "ActorIds": s.get("actorIds", []),
            "EndpointIds": s.get("endpointIds", []),
            "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/guardduty",
        }
        for s in sequence["signals"]
    ]
    actors = [
        {
            "Id": a["id"],
            "User": {
                "Name": a["user"]["name"],
                "Uid": a["user"]["uid"],
                "Type": a["user"]["type"],
                "CredentialUid": a["user"]["credentialUid"],
                "Account": {"Uid": ACCOUNT, "Name": "payments-prod"},
            },
            "Session": {"Uid": a["session"]["uid"], "MfaStatus": a["session"]["mfaStatus"]},
        }
        for a in sequence["actors"]
    ]
    endpoints = [
        {
            "Id": e["id"],
            "Ip": e["ip"],
            "Port": e["port"],
            "Location": {"City": e["location"]["city"], "Country": e["location"]["country"]},
            "AutonomousSystem": {
                "Name": e["autonomousSystem"]["name"],
                "Number": e["autonomousSystem"]["number"],
            },
        }
        for e in sequence["endpoints"]
    ]
    indicators = [
        {"Key": i["key"], "Values": i["values"], "Title": i["title"]} for i in sequence["sequenceIndicators"]
    ]
    asff_type = wire["type"].replace("/", "-", 1)
    return {
        "SchemaVersion": "2018-10-08",
        "Id": wire["arn"],
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/guardduty",
        "GeneratorId": f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/{DETECTOR}",
        "AwsAccountId": ACCOUNT,
        "Region": REGION,
        "Types": [f"TTPs/{asff_type}"],
        "CreatedAt": wire["createdAt"],
        "UpdatedAt": wire["updatedAt"],
        "Severity": {"Product": 10, "Label": "CRITICAL", "Normalized": 100},
        "Title": wire["title"],
        "Description": wire["description"],
        "ProductFields": {
            "aws/guardduty/service/count": "1",
            "aws/guardduty/service/serviceName": "guardduty",
        },
        "Resources": [_asff_resource(r) for r in sequence["resources"]],
        "Detection": {
            "Sequence": {
                "Uid": sequence["uid"],
                "Actors": actors,
                "Endpoints": endpoints,
                "Signals": signals,
                "SequenceIndicators": indicators,
            }
        },
        "FindingProviderFields": {"Types": [f"TTPs/{asff_type}"]},
        "RecordState": "ACTIVE",
        "Sample": False,
    }


def _asff_resource(resource: dict[str, Any]) -> dict[str, Any]:
    kind = resource["resourceType"]
    base = {"Id": resource["uid"], "Partition": "aws", "Region": REGION}
    if kind == "EKS_CLUSTER":
        return {
            **base,
            "Type": "AwsEksCluster",
            "Details": {"AwsEksCluster": {"Name": resource["name"], "Arn": resource["uid"]}},
        }
    if kind == "KUBERNETES_WORKLOAD":
        workload = resource["data"]["kubernetesWorkload"]
        return {
            **base,
            "Type": "Other",
            "Details": {
                "Other": {
                    "resourceType": "KUBERNETES_WORKLOAD",
                    "name": resource["name"],
                    "namespace": workload["namespace"],
                    "type": workload["type"],
                }
            },
        }
    if kind == "CONTAINER":
        return {
            **base,
            "Type": "Container",
            "Details": {
                "Container": {"Name": resource["name"], "ImageName": resource["data"]["container"]["image"]}
            },
        }
    if kind == "EC2_INSTANCE":
        return {**base, "Type": "AwsEc2Instance"}
    return {**base, "Type": "AwsIamAccessKey"}


def fixtures() -> dict[str, dict[str, Any]]:
    """Every fixture file name -> its content."""
    out: dict[str, dict[str, Any]] = {}
    for index, kind in enumerate(RUNTIME_TYPES):
        wire = runtime_finding(kind, Pod(), finding_id=f"{0x7E1F2A3B4C5D6E7F8091A2B3C4D5E6F0 + index:032x}")
        out[f"runtime-{kind}.wire.json"] = wire
    out["runtime-reverse-shell.eventbridge.json"] = eventbridge_form(out["runtime-reverse-shell.wire.json"])
    out["runtime-reverse-shell.boto3.json"] = boto3_form(out["runtime-reverse-shell.wire.json"])
    out["node-debugger-sysadmin.wire.json"] = debug_pod_finding(
        "ip-10-0-1-23.eu-west-1.compute.internal", "x7k2p", sysadmin=True
    )
    out["node-debugger-general.wire.json"] = debug_pod_finding(
        "ip-10-0-1-23.eu-west-1.compute.internal",
        "q9w4z",
        sysadmin=False,
        finding_id="d0c7e9a1b2c3d4e5f60718293a4b5c6e",
    )
    for index, kind in enumerate(SEQUENCE_TYPES):
        wire = sequence_finding(
            kind, Sequence(TWO_PODS), finding_id=f"{0xA5E9C0DE1F2A3B4C5D6E7F8091A2B3C0 + index:032x}"
        )
        out[f"attack-sequence-{kind}.wire.json"] = wire
    eks = out["attack-sequence-eks.wire.json"]
    out["attack-sequence-eks.boto3.json"] = boto3_form(eks)
    out["attack-sequence-eks.eventbridge.json"] = eventbridge_form(eks)
    out["attack-sequence-eks.asff.json"] = {"Findings": [asff_form(eks)]}
    return out


if __name__ == "__main__":
    HERE.mkdir(parents=True, exist_ok=True)
    for name, content in fixtures().items():
        (HERE / name).write_text(json.dumps(content, indent=2) + "\n")


def workload_from_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """`kubernetesWorkloadDetails` as GuardDuty builds it from the pod in the audit event (API JSON in)."""
    spec, meta = pod["spec"], pod["metadata"]
    statuses = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
    containers = []
    for container in spec["containers"]:
        context = container.get("securityContext") or {}
        status_id = statuses.get(container["name"], {}).get("containerID") or ""
        containers.append(
            {
                "containerRuntime": "containerd",
                "id": status_id.removeprefix("containerd://"),
                "name": container["name"],
                "image": container["image"],
                "imagePrefix": "",
                "volumeMounts": [
                    {"name": m["name"], "mountPath": m["mountPath"]}
                    for m in container.get("volumeMounts") or []
                ],
                "securityContext": {
                    k: context[k] for k in ("privileged", "allowPrivilegeEscalation") if k in context
                },
            }
        )
    return {
        "name": meta["name"],
        "type": "pods",
        "uid": meta["uid"],
        "namespace": meta["namespace"],
        "serviceAccountName": spec.get("serviceAccountName", "default"),
        "hostNetwork": bool(spec.get("hostNetwork")),
        "hostIPC": bool(spec.get("hostIPC")),
        "hostPID": bool(spec.get("hostPID")),
        "containers": containers,
        "volumes": [
            {"name": v["name"], "hostPath": {"path": v["hostPath"]["path"]}}
            for v in spec.get("volumes") or []
            if v.get("hostPath")
        ],
    }


def in_account(wire: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    """`wire` moved into the account, region, detector and cluster of another finding (`detail`)."""
    out = copy.deepcopy(wire)
    detector = detail["service"]["detectorId"]
    out |= {"accountId": detail["accountId"], "region": detail["region"]}
    out["arn"] = (
        f"arn:aws:guardduty:{detail['region']}:{detail['accountId']}:detector/{detector}/finding/{wire['id']}"
    )
    out["service"]["detectorId"] = detector
    if "eksClusterDetails" in out["resource"]:
        out["resource"]["eksClusterDetails"] = copy.deepcopy(detail["resource"]["eksClusterDetails"])
    return out
