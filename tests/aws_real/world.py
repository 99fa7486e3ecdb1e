"""The real game day's world in the sandbox: an attacker IAM user with Kubernetes access, its privileged pod,
and the GuardDuty finding for it; everything created is named `eksir-test-<run>` and removed by `cleanup`.

Why the finding is built here and not waited for: GuardDuty cannot be asked to emit a finding about a given
pod (CreateSampleFindings names made-up resources), and its own finding arrives minutes later when EKS audit
log monitoring is on at all. So the finding is written from what really happened (the pod the attacker
created, as the API server returns it; the attacker's access key; the cluster), in the EventBridge shape the
lab's finding uses, and eksir is run with `--trust-finding-file`, which the case records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import CoreV1Api, NetworkingV1Api
from kubernetes.client.exceptions import ApiException

from eksir.clients.aws import new_client
from eksir.clients.eks_token import TokenSource, eks_bearer_token
from eksir.clients.k8s import api_client_from_eks
from tests.aws_real.conftest import Sandbox

FINDING_TYPE = "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
IMAGE = "public.ecr.aws/docker/library/busybox:1.36"
RUN_TAG = "eksir.io/test-run"


def _until(what: str, check: Callable[[], Any], seconds: float = 180.0) -> Any:
    """Poll `check` until it returns something truthy (IAM and EKS are eventually consistent)."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except ApiException as exc:  # 401 while a new key or access entry propagates
            last = exc
        time.sleep(5)
    raise AssertionError(f"timed out waiting for {what} ({last})")


@dataclass
class World:
    """What the game day created in the sandbox, so that `cleanup` removes exactly that."""

    sandbox: Sandbox
    cluster: dict[str, Any]
    run: str = field(default_factory=lambda: f"eksir-test-{uuid.uuid4().hex[:8]}")
    key: dict[str, str] = field(default_factory=dict)
    user_arn: str = ""
    pod: dict[str, Any] = field(default_factory=dict)

    def api(self, sts: Any) -> Any:
        token = TokenSource(lambda: eks_bearer_token(sts, self.cluster["name"]))
        return api_client_from_eks(
            self.cluster["endpoint"], self.cluster["certificateAuthority"]["data"], token
        )

    def admin(self) -> Any:
        return self.api(self.sandbox.client("sts"))

    def create_attacker(self) -> None:
        """An IAM user with a key and an access entry allowed to edit only the run's namespace."""
        iam, eks = self.sandbox.client("iam"), self.sandbox.client("eks")
        user = iam.create_user(UserName=self.run, Tags=[{"Key": RUN_TAG, "Value": self.run}])["User"]
        self.user_arn = user["Arn"]
        created = iam.create_access_key(UserName=self.run)["AccessKey"]
        self.key = {"id": created["AccessKeyId"], "secret": created["SecretAccessKey"]}
        CoreV1Api(self.admin()).create_namespace(
            {"metadata": {"name": self.run, "labels": {RUN_TAG: self.run}}}
        )
        eks.create_access_entry(clusterName=self.cluster["name"], principalArn=self.user_arn, type="STANDARD")
        eks.associate_access_policy(
            clusterName=self.cluster["name"],
            principalArn=self.user_arn,
            policyArn=EDIT_POLICY,
            accessScope={"type": "namespace", "namespaces": [self.run]},
        )

    def attack(self) -> None:
        """The attacker, with its own key and EKS token, launches a privileged pod; wait until it runs."""
        sts = new_client(
            "sts",
            region=self.sandbox.config.region,
            access_key_id=self.key["id"],
            secret_access_key=self.key["secret"],
        )
        core = CoreV1Api(self.api(sts))
        body = {
            "metadata": {"name": "debug-tools", "labels": {"app": "debug-tools"}},
            "spec": {
                "containers": [
                    {
                        "name": "shell",
                        "image": IMAGE,
                        "command": ["sleep", "3600"],
                        "securityContext": {"privileged": True},
                    }
                ]
            },
        }
        _until("the attacker's Kubernetes access", lambda: core.create_namespaced_pod(self.run, body))
        admin = CoreV1Api(self.admin())

        def running() -> dict[str, Any] | None:
            pod = admin.read_namespaced_pod("debug-tools", self.run)
            return admin.api_client.sanitize_for_serialization(pod) if pod.status.phase == "Running" else None

        self.pod = _until("the privileged pod to run", running)

    def network_policies(self) -> list[str]:
        return [
            p.metadata.name
            for p in NetworkingV1Api(self.admin()).list_namespaced_network_policy(self.run).items
        ]

    def attack_record(self) -> Attack:
        config = self.sandbox.config
        return Attack(
            self.pod,
            self.cluster,
            config.account,
            config.region or "",
            self.user_arn,
            self.run,
            self.key["id"],
        )

    def key_status(self) -> str:
        keys = self.sandbox.client("iam").list_access_keys(UserName=self.run)["AccessKeyMetadata"]
        return str(next(k["Status"] for k in keys if k["AccessKeyId"] == self.key["id"]))

    def cleanup(self) -> list[str]:
        """Remove everything the run created; returns what could not be removed (for the test's report)."""
        problems: list[str] = []
        iam, eks = self.sandbox.client("iam"), self.sandbox.client("eks")
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("namespace", lambda: CoreV1Api(self.admin()).delete_namespace(self.run)),
            (
                "access entry",
                lambda: eks.delete_access_entry(clusterName=self.cluster["name"], principalArn=self.user_arn),
            ),
            ("access key", lambda: iam.delete_access_key(UserName=self.run, AccessKeyId=self.key["id"])),
            ("user", lambda: iam.delete_user(UserName=self.run)),
        ]
        for what, remove in steps:
            try:
                remove()
            except Exception as exc:  # keep going: every leftover is reported, none hides another
                problems.append(f"{what}: {exc}")
        return problems


@dataclass(frozen=True)
class Attack:
    """What the finding is written from: the pod as the API server returned it, the cluster, the attacker."""

    pod: dict[str, Any]
    cluster: dict[str, Any]
    account: str
    region: str
    user_arn: str
    user_name: str
    access_key_id: str


def _resource(attack: Attack) -> dict[str, Any]:
    pod, cluster = attack.pod, attack.cluster
    container = pod["spec"]["containers"][0]
    workload = {
        "name": pod["metadata"]["name"],
        "type": "pods",
        "uid": pod["metadata"]["uid"],
        "namespace": pod["metadata"]["namespace"],
        "containers": [
            {"name": container["name"], "image": container["image"], "securityContext": {"privileged": True}}
        ],
    }
    return {
        "resourceType": "EKSCluster",
        "eksClusterDetails": {
            "name": cluster["name"],
            "arn": cluster["arn"],
            "vpcId": cluster["resourcesVpcConfig"]["vpcId"],
            "status": "ACTIVE",
        },
        "kubernetesDetails": {
            "kubernetesUserDetails": {"username": attack.user_arn, "uid": "", "groups": []},
            "kubernetesWorkloadDetails": workload,
        },
        "accessKeyDetails": {
            "accessKeyId": attack.access_key_id,
            "principalId": attack.user_name,
            "userName": attack.user_name,
            "userType": "IAMUser",
        },
    }


def finding(attack: Attack) -> dict[str, Any]:
    """The EventBridge event GuardDuty would send for the attacker's pod (see the module docstring)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    finding_id = uuid.uuid4().hex
    detail = {
        "schemaVersion": "2.0",
        "accountId": attack.account,
        "region": attack.region,
        "partition": "aws",
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{attack.region}:{attack.account}:detector/eksirtest/finding/{finding_id}",
        "type": FINDING_TYPE,
        "resource": _resource(attack),
        "service": {
            "serviceName": "guardduty",
            "detectorId": "eksirtest",
            "eventFirstSeen": now,
            "eventLastSeen": now,
            "count": 1,
            "archived": False,
        },
        "severity": 8,
        "createdAt": now,
        "updatedAt": now,
        "title": "Privileged container with root level access launched on the EKS Cluster.",
        "description": f"eksir make test-aws: {attack.user_name} launched a privileged pod",
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": attack.account,
        "region": attack.region,
        "time": now[:19] + "Z",
        "resources": [],
        "detail": detail,
    }
