"""Write the finding fixtures: every representation x every actor kind, from one spec per actor.

Run from the repo root: `.venv/bin/python tests/data/findings/make_fixtures.py`. The files are committed;
the script keeps them consistent. PascalCase is produced from botocore's service model directly (not from
eksir's own mapping), so the tests compare the parser against an independent conversion. `index.json`
records what every file must parse to; the tests read it.
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
ACCOUNT = "111122223333"
REGION = "eu-west-1"
DETECTOR = "4cb9a4f1e2d3c4b5a6978877665544aa"
CLUSTER = "prod-payments"
OLD_TYPE = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
NEW_TYPE = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
CLUSTER_CREATED = 1679521705.752  # 2023-03-22T21:48:25.752Z
AUTH = f"aws-iam-authenticator:{ACCOUNT}:"

# kind -> (kubernetesUserDetails, accessKeyDetails or None, namespace, pod, source ip, asn, org, country code)
ACTORS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str, str, str, str, str, str]] = {
    "iam-user": (
        {
            "username": "kubernetes-admin",
            "uid": AUTH + "AIDAZ4EXAMPLEUSER0001",
            "groups": ["system:masters", "system:authenticated"],
            "sessionName": [""],
        },
        {
            "accessKeyId": "AKIAZ4EXAMPLEKEY0001",
            "principalId": "AIDAZ4EXAMPLEUSER0001",
            "userName": "terraform",
            "userType": "IAMUser",
        },
        "default",
        "debug-tools",
        "203.0.113.45",
        "64496",
        "Example Transit AS",
        "NL",
    ),
    "iam-role": (
        {
            "username": f"arn:aws:sts::{ACCOUNT}:assumed-role/PlatformAdmin/bob-example.com",
            "uid": AUTH + "AROAZ4EXAMPLEROLE0002",
            "groups": ["system:authenticated"],
            "sessionName": ["bob@example.com"],
            "impersonatedUser": {"username": "ops-breakglass", "groups": ["system:masters"]},
        },
        {
            "accessKeyId": "ASIAZ4EXAMPLEKEY0002",
            "principalId": "AROAZ4EXAMPLEROLE0002:bob@example.com",
            "userName": "PlatformAdmin",
            "userType": "Role",
        },
        "payments",
        "payments-api-7d9f8b6c5-x2x4z",
        "198.51.100.23",
        "64497",
        "Example Cloud Hosting",
        "US",
    ),
    "ec2-instance-role": (
        {
            "username": "ci-runner",
            "uid": AUTH + "AROAZ4EXAMPLEROLE0003",
            "groups": ["ci-deployers", "system:authenticated"],
            "sessionName": ["i-0a1b2c3d4e5f60718"],
        },
        {
            "accessKeyId": "ASIAZ4EXAMPLEKEY0003",
            "principalId": "AROAZ4EXAMPLEROLE0003:i-0a1b2c3d4e5f60718",
            "userName": "ci-runner-instance-role",
            "userType": "Role",
        },
        "ci",
        "build-agent-0",
        "10.20.3.17",
        "0",
        "UNKNOWN",
        "",
    ),
    "oidc-user": (
        {
            "username": "oidc:alice@example.com",
            "uid": "",
            "groups": ["oidc:platform-admins", "system:authenticated"],
        },
        None,
        "monitoring",
        "node-exporter-debug",
        "192.0.2.77",
        "64498",
        "Example Broadband",
        "DE",
    ),
    "service-account": (
        {
            "username": "system:serviceaccount:argocd:argocd-application-controller",
            "uid": "1871d525-442e-487f-ae60-81336d1ff0cf",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"],
        },
        None,
        "argocd",
        "privileged-pod",
        "10.20.5.129",
        "0",
        "UNKNOWN",
        "",
    ),
    "anonymous": (
        {
            "username": "system:anonymous",
            "uid": None,
            "groups": ["system:unauthenticated"],
            "sessionName": [],
        },
        None,
        "kube-public",
        "xmrig-5f7d",
        "185.220.101.9",
        "64499",
        "Example Anonymiser Network",
        "SE",
    ),
    "node": (
        {
            "username": "system:node:ip-10-20-7-41.eu-west-1.compute.internal",
            "uid": AUTH + "AROAZ4EXAMPLENODE0007",
            "groups": ["system:bootstrappers", "system:nodes", "system:authenticated"],
            "sessionName": ["i-0fedcba9876543210"],
        },
        {
            "accessKeyId": "ASIAZ4EXAMPLEKEY0007",
            "principalId": "AROAZ4EXAMPLENODE0007:i-0fedcba9876543210",
            "userName": "eks-node-role",
            "userType": "Role",
        },
        "kube-system",
        "aws-node-debug",
        "10.20.7.41",
        "0",
        "UNKNOWN",
        "",
    ),
}


CITIES = {
    "NL": ("Amsterdam", 52.37, 4.89),
    "US": ("Ashburn", 39.04, -77.49),
    "DE": ("Frankfurt", 50.11, 8.68),
    "SE": ("Stockholm", 59.33, 18.07),
}


def finding_id(index: int) -> str:
    return f"{0x5EC0DE00 + index:08x}" + "7c1e4a9b2d3f4e5a6b7c8d9e"


def wire_finding(kind: str, index: int, finding_type: str) -> dict[str, Any]:
    """The canonical (camelCase, S3-export/EventBridge) form of the fixture finding for one actor."""
    user, keys, namespace, pod, ip, asn, org, country = ACTORS[kind]
    fid = finding_id(index)
    created = datetime(2025, 11, 20, 3, 14, 7, tzinfo=UTC) + timedelta(minutes=index)
    resource: dict[str, Any] = {
        "resourceType": "EKSCluster",
        "eksClusterDetails": {
            "name": CLUSTER,
            "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
            "vpcId": "vpc-0a1b2c3d4e5f67890",
            "status": "ACTIVE",
            "createdAt": CLUSTER_CREATED,
            "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "payments"}],
        },
        "kubernetesDetails": {
            "kubernetesUserDetails": copy.deepcopy(user),
            "kubernetesWorkloadDetails": {
                "name": pod,
                "type": "pods",
                "uid": f"6b1d2c3e-4f50-4a6b-8c7d-{index:012d}",
                "namespace": namespace,
                "serviceAccountName": "default",
                "hostNetwork": index % 2 == 0,
                "hostPID": True,
                "hostIPC": False,
                "containers": [
                    {
                        "name": "shell",
                        "image": "public.ecr.aws/docker/library/alpine:3.20",
                        "imagePrefix": "public.ecr.aws",
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                    },
                    {
                        "name": "sidecar",
                        "image": "busybox:1.36",
                        "imagePrefix": "",
                        "securityContext": {"privileged": False, "allowPrivilegeEscalation": False},
                    },
                ],
                "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
            },
        },
    }
    if keys is not None:
        resource["accessKeyDetails"] = copy.deepcopy(keys)
    remote: dict[str, Any] = {
        "ipAddressV4": ip,
        "organization": {"asn": asn, "asnOrg": org, "isp": org, "org": org},
        "country": {
            "countryCode": country,
            "countryName": {"NL": "Netherlands", "US": "United States", "DE": "Germany", "SE": "Sweden"}.get(
                country, ""
            ),
        },
        "city": {"cityName": CITIES.get(country, ("UNKNOWN", 0.0, 0.0))[0]},
        "geoLocation": {
            "lat": CITIES.get(country, ("", 0.0, 0.0))[1],
            "lon": CITIES.get(country, ("", 0.0, 0.0))[2],
        },
    }
    return {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "id": fid,
        "arn": f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/{DETECTOR}/finding/{fid}",
        "type": finding_type,
        "resource": resource,
        "service": {
            "serviceName": "guardduty",
            "detectorId": DETECTOR,
            "action": {
                "actionType": "KUBERNETES_API_CALL",
                "kubernetesApiCallAction": {
                    "requestUri": f"/api/v1/namespaces/{namespace}/pods",
                    "verb": "create",
                    "sourceIPs": [ip],
                    "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
                    "remoteIpDetails": remote,
                    "statusCode": 201,
                    "resource": "pods",
                    "namespace": namespace,
                    "resourceName": pod,
                },
            },
            "resourceRole": "TARGET",
            "additionalInfo": {"value": "{}", "type": "default"},
            "evidence": None,
            "eventFirstSeen": _iso(created - timedelta(seconds=49)),
            "eventLastSeen": _iso(created - timedelta(seconds=48)),
            "archived": False,
            "count": 1,
        },
        "severity": 5 if finding_type == OLD_TYPE else 8,
        "createdAt": _iso(created),
        "updatedAt": _iso(created),
        "title": "Privileged container with root level access launched on the EKS Cluster.",
        "description": "A privileged container with root level access was launched on EKS Cluster "
        f"{CLUSTER}. "
        "If this behavior is not expected, it may indicate that your credentials are compromised.",
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _member_names(value: Any, shape: Any) -> Any:
    """Wire -> boto3 member names, straight from botocore's model; boto3 drops `null`s."""
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


def boto3_finding(wire: dict[str, Any], cluster_created: str) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model("guardduty")
    pascal = _member_names(wire, model.shape_for("Finding"))
    pascal["Service"]["AdditionalInfo"] = {"Value": "{}", "Type": "default"}  # the API shape, not free-form
    pascal["Resource"]["EksClusterDetails"]["CreatedAt"] = cluster_created
    return pascal


def _cluster_created(offset_hours: int, separator: str) -> str:
    moment = datetime.fromtimestamp(CLUSTER_CREATED, timezone(timedelta(hours=offset_hours)))
    return moment.isoformat(sep=separator, timespec="microseconds")


def eventbridge(wire: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"c030d66e-ccae-00a7-b7ec-{index:012d}",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": wire["updatedAt"][:19] + "Z",
        "region": REGION,
        "resources": [],
        "detail": wire,
    }


def sns(event: dict[str, Any], index: int) -> dict[str, Any]:
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:guardduty-findings"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:7f1c0a52-{index:04d}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"95df01b4-ee98-5cb9-9903-{index:012d}",
                    "TopicArn": topic,
                    "Subject": None,
                    "Message": json.dumps(event),
                    "Timestamp": event["time"],
                    "SignatureVersion": "1",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}/{key}", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}/{index}", out)
    elif value is not None:
        out[prefix] = json.dumps(value) if isinstance(value, bool) else str(value)


def asff(wire: dict[str, Any]) -> dict[str, Any]:
    """Security Hub's view: GuardDuty details flattened to strings, the cluster as an AwsEksCluster."""
    fields: dict[str, str] = {}
    resource = copy.deepcopy(wire["resource"])
    cluster = resource["eksClusterDetails"]
    for moved in ("name", "arn", "status", "tags"):
        cluster.pop(moved)
    _flatten(resource, "aws/guardduty/resource", fields)
    _flatten(wire["service"], "aws/guardduty/service", fields)
    fields |= {"aws/securityhub/ProductName": "GuardDuty", "aws/securityhub/CompanyName": "Amazon"}
    asff_type = wire["type"].replace("/", "-", 1)
    return {
        "SchemaVersion": "2018-10-08",
        "Id": wire["arn"],
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/guardduty",
        "GeneratorId": f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/{DETECTOR}",
        "AwsAccountId": ACCOUNT,
        "Region": REGION,
        "Types": [f"TTPs/PrivilegeEscalation/{asff_type}"],
        "CreatedAt": wire["createdAt"],
        "UpdatedAt": wire["updatedAt"],
        "Severity": {
            "Product": wire["severity"],
            "Label": "HIGH" if wire["severity"] >= 7 else "MEDIUM",
            "Normalized": int(wire["severity"] * 10),
        },
        "Title": wire["title"],
        "Description": wire["description"],
        "ProductFields": fields,
        "Resources": [
            {
                "Type": "AwsEksCluster",
                "Id": wire["resource"]["eksClusterDetails"]["arn"],
                "Partition": "aws",
                "Region": REGION,
                "Tags": {"env": "prod", "team": "payments"},
                "Details": {
                    "AwsEksCluster": {
                        "Name": CLUSTER,
                        "Arn": wire["resource"]["eksClusterDetails"]["arn"],
                        "ClusterStatus": "ACTIVE",
                        "Version": "1.31",
                    }
                },
            }
        ],
        "FindingProviderFields": {"Types": [f"TTPs/PrivilegeEscalation/{asff_type}"]},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
        "Sample": False,
    }


def representations(kind: str, index: int) -> dict[str, tuple[str, bytes]]:
    """representation -> (file suffix, bytes); every one carries the same finding."""
    finding_type = OLD_TYPE if index % 2 == 0 else NEW_TYPE
    wire = wire_finding(kind, index, finding_type)
    event = eventbridge(wire, index)
    s3_lines = json.dumps(wire) + "\n" + '{"findings":[]}' + "\n\n"
    return {
        "boto3": ("json", _dump({"Findings": [boto3_finding(wire, _cluster_created(-5, "T"))]})),
        "console": ("json", _dump(boto3_finding(wire, _cluster_created(1, " ")))),
        "wire": ("json", _dump(wire)),
        "s3-export": ("jsonl", s3_lines.encode()),
        "eventbridge": ("json", _dump(event)),
        "sns": ("json", _dump(sns(event, index))),
        "asff": ("json", _dump(asff(wire))),
        "gzip": ("jsonl.gz", gzip.compress(s3_lines.encode(), mtime=0)),
    }


SOURCE_FORMATS = {
    "boto3": "boto3",
    "console": "boto3",
    "wire": "wire",
    "s3-export": "s3-export",
    "eventbridge": "eventbridge",
    "sns": "sns",
    "asff": "asff",
    "gzip": "s3-export",
}


def _dump(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def example() -> dict[str, Any]:
    """The README demo: live successor type, built-in admin with an IAM user's key, from a public IP."""
    wire = wire_finding("iam-user", 99, NEW_TYPE)
    wire["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["hostNetwork"] = False
    return eventbridge(wire, 99)


def main() -> None:
    index: dict[str, dict[str, Any]] = {}
    for number, kind in enumerate(ACTORS):
        for representation, (suffix, data) in representations(kind, number).items():
            name = f"{kind}.{representation}.{suffix}"
            (HERE / name).write_bytes(data)
            user, keys, namespace, pod, ip, *_ = ACTORS[kind]
            index[name] = {
                "actor_kind": kind,
                "representation": representation,
                "source_format": SOURCE_FORMATS[representation],
                "id": finding_id(number),
                "type": OLD_TYPE if number % 2 == 0 else NEW_TYPE,
                "username": user["username"],
                "access_key_id": keys["accessKeyId"] if keys else None,
                "namespace": namespace,
                "pod": pod,
                "source_ip": ip,
                "cluster": CLUSTER,
            }
    (HERE / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (REPO / "examples").mkdir(exist_ok=True)
    (REPO / "examples" / "finding-eventbridge.json").write_bytes(_dump(example()))


if __name__ == "__main__":
    main()
