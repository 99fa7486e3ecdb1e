"""The fleet lab (`eksir lab up --scenario fleet`): attacked pods in two member accounts and the AWS pipeline.

On top of the cross-account lab (security, management and a member account in moto; eksir answers from the
security account through `eksir-responder`), this adds a second member account (lab/fleet_member.py: its own
EKS cluster, nodes and node role, and its own `eksir-responder` from eksir's template, trusting the security
account with the same external id, mapped in aws-auth), then seeds `incidents` privileged pods created
through the real kube-apiserver: even-numbered incidents in the first account's cluster (namespaces
NAMESPACES, on the attacked node), odd-numbered in the second's (SECOND_NAMESPACES, on its nodes). One lab
API server serves both clusters; each cluster has its own namespace set so their pods never collide. Each
incident's finding names its own account (`detail.accountId`) and cluster, so a worker with
`EKSIR_ASSUME_ROLE=arn:aws:iam::{account}:role/eksir-responder` must route each to its own account.

In the security account it builds what `eksir serve` consumes: an SQS queue with a dead-letter queue
(RedrivePolicy) fed by an EventBridge rule on the default bus with the GuardDuty event pattern (findings and
GuardDuty's runtime coverage/health events, so the worker's rejects are exercised too). moto's EventBridge
delivers to SQS.

`fleet.json` lists the events to send (each incident's finding, repeats with a higher count and a later
updatedAt, a second finding about the same pod that joins its case, non-findings), the expected incidents
with their account and cluster, and each account's cluster and responder role, so a bench or test sends the
events with PutEvents and scores the cases (lab/fleet_run.py).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eksir.lab.moto_server import AwsEndpoint

if TYPE_CHECKING:
    from eksir.lab.fleet_member import Member

FLEET_FILE = "fleet.json"
NAMESPACES = ("team-a", "team-b", "team-c", "team-d")
"""The first member account's cluster's namespaces; the second's are SECOND_NAMESPACES (a set per cluster)."""
SECOND_NAMESPACES = ("staging-a", "staging-b")
QUEUE = "eksir-findings"
DLQ = "eksir-findings-dlq"
RULE = "eksir-guardduty-findings"
MAX_RECEIVES = 3
EVENT_PATTERN = {
    "source": ["aws.guardduty"],
    "detail-type": [
        "GuardDuty Finding",
        "GuardDuty Runtime Protection Unhealthy",
        "GuardDuty Runtime Protection Healthy",
    ],
}


@dataclass(frozen=True)
class Pipeline:
    queue_url: str
    dlq_url: str
    rule: str
    bus: str


def create_pipeline(security: AwsEndpoint) -> Pipeline:
    """DLQ, queue with RedrivePolicy, EventBridge rule with the GuardDuty pattern targeting the queue."""
    sqs, events = security.client("sqs"), security.client("events")
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
    queue_url = sqs.create_queue(
        QueueName=QUEUE, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "60"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=RULE, EventPattern=json.dumps(EVENT_PATTERN), State="ENABLED")
    events.put_targets(Rule=RULE, Targets=[{"Id": "queue", "Arn": arn}])
    return Pipeline(queue_url, dlq_url, RULE, "default")


def create_namespaces(admin: Any, namespaces: tuple[str, ...]) -> None:
    """Each namespace with its `default` service account (the lab runs no controller-manager)."""
    from kubernetes import client  # noqa: PLC0415 - the lab's Kubernetes side imports it lazily

    core = client.CoreV1Api(admin)
    for namespace in namespaces:
        for create in (
            lambda ns=namespace: core.create_namespace({"metadata": {"name": ns}}),
            lambda ns=namespace: core.create_namespaced_service_account(
                ns, {"metadata": {"name": "default"}}
            ),
        ):
            try:
                create()  # type: ignore[no-untyped-call]
            except client.ApiException as exc:
                if exc.status != 409:
                    raise


@dataclass(frozen=True)
class Placement:
    """Where one cluster's attacked pods go: its namespace set and its nodes (private DNS name and IP)."""

    namespaces: tuple[str, ...]
    nodes: tuple[tuple[str, str], ...]


def seed_pods(
    admin: Any, template_pod: dict[str, Any], numbers: list[int], where: Placement
) -> list[dict[str, Any]]:
    """Privileged pods like the attacker's, `fleet-debug-NNN` for each of `numbers`, spread over `where`'s
    namespaces and nodes; returns them Running."""
    from kubernetes import client  # noqa: PLC0415 - the lab's Kubernetes side imports it lazily

    from eksir.lab.k8s_seed import mark_running  # noqa: PLC0415

    core = client.CoreV1Api(admin)
    create_namespaces(admin, where.namespaces)
    pods = []
    for n, i in enumerate(numbers):
        namespace = where.namespaces[n % len(where.namespaces)]
        node_name, node_ip = where.nodes[n % len(where.nodes)]
        name = f"fleet-debug-{i:03d}"
        spec = copy.deepcopy(template_pod["spec"])
        for key in ("serviceAccount", "serviceAccountName", "tolerations", "enableServiceLinks"):
            spec.pop(key, None)
        spec["nodeName"] = node_name
        spec["volumes"] = [v for v in spec.get("volumes", []) if "hostPath" in v]
        for container in spec["containers"]:
            container["volumeMounts"] = [
                m for m in container.get("volumeMounts", []) if m["name"] == "host-root"
            ]
        spec["automountServiceAccountToken"] = False
        body = {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}
        core.create_namespaced_pod(namespace, body)
        ip = f"{node_ip.rsplit('.', 1)[0]}.{(i % 120) + 130}"
        mark_running(core, name, namespace, _Node(private_ip=node_ip), ip)  # type: ignore[arg-type]
        pods.append(admin.sanitize_for_serialization(core.read_namespaced_pod(name, namespace)))
    return pods


def bind_responder_certificate(admin: Any) -> None:
    """Bind the responder ClusterRole (`eksir permissions`) to the lab's responder client certificate.

    Why: the directory-store fleet test and `bench_fleet.py --local` give workers `--kubeconfig` (the
    responder's certificate, for both clusters) instead of EKS tokens, to measure the worker without the
    token path. The permissions are the same ClusterRole EKS tokens get.
    """
    from kubernetes import client  # noqa: PLC0415

    from eksir.actions.permissions import all_specs, cluster_role  # noqa: PLC0415

    name = cluster_role(all_specs())["metadata"]["name"]
    client.RbacAuthorizationV1Api(admin).create_cluster_role_binding(
        {
            "metadata": {"name": f"{name}-certificate"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eksir-responder"}
            ],
        }
    )


@dataclass(frozen=True)
class _Node:
    """What `mark_running` reads of a node: its IP (the pods share the attacked node)."""

    private_ip: str


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def finding_for(template: dict[str, Any], pod: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The lab's finding, about `pod` instead, with a fresh finding id (as GuardDuty would send it)."""
    event = copy.deepcopy(template)
    detail = event["detail"]
    finding_id = _hex(rng)
    detail["id"] = finding_id
    detail["arn"] = detail["arn"].rsplit("/", 1)[0] + "/" + finding_id
    workload = detail["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    meta = pod["metadata"]
    workload.update({"name": meta["name"], "uid": meta["uid"], "namespace": meta["namespace"]})
    return event


def repeat_of(event: dict[str, Any], count: int, seconds_later: int) -> dict[str, Any]:
    """GuardDuty's repeat: the same finding id with a higher count and a later updatedAt."""
    from datetime import datetime, timedelta  # noqa: PLC0415

    again = copy.deepcopy(event)
    detail = again["detail"]
    detail["service"]["count"] = count
    updated = datetime.fromisoformat(detail["updatedAt"].replace("Z", "+00:00")) + timedelta(
        seconds=seconds_later
    )
    detail["updatedAt"] = updated.strftime("%Y-%m-%dT%H:%M:%S.") + f"{updated.microsecond // 1000:03d}Z"
    return again


def non_findings(account: str, region: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """GuardDuty events that are not handled findings: runtime coverage/health, and an EC2 finding."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        if i % 2 == 0:
            out.append(
                {
                    "detail-type": "GuardDuty Runtime Protection Unhealthy",
                    "detail": {
                        "schemaVersion": "1.0",
                        "resourceDetails": {
                            "resourceType": "EKS",
                            "eksClusterDetails": {"clusterName": "eksir-lab"},
                        },
                        "issue": "agent not reporting",
                    },
                }
            )
        else:
            finding_id = _hex(rng)
            out.append(
                {
                    "detail-type": "GuardDuty Finding",
                    "detail": {
                        "schemaVersion": "2.0",
                        "accountId": account,
                        "region": region,
                        "id": finding_id,
                        "arn": f"arn:aws:guardduty:{region}:{account}:detector/x/finding/{finding_id}",
                        "type": "Recon:EC2/PortProbeUnprotectedPort",
                        "severity": 2,
                        "createdAt": "2026-01-01T00:00:00.000Z",
                        "updatedAt": "2026-01-01T00:00:00.000Z",
                        "resource": {"resourceType": "Instance"},
                        "service": {"count": 1},
                    },
                }
            )
    return out


def plan_events(
    findings: list[dict[str, Any]],
    *,
    repeats: int,
    joins: int,
    noise: int,
    account: str,
    region: str,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """The events to send, in a shuffled but reproducible order (each incident's first finding first)."""
    firsts = [{"kind": "finding", "incident": i, "event": f} for i, f in enumerate(findings)]
    later: list[dict[str, Any]] = []
    for r in range(repeats):
        i = r % len(findings)
        later.append(
            {"kind": "repeat", "incident": i, "event": repeat_of(findings[i], 2 + r // len(findings), r + 1)}
        )
    for j in range(joins):
        i = j % len(findings)
        joined = copy.deepcopy(findings[i])
        joined["detail"]["id"] = _hex(rng)
        joined["detail"]["arn"] = joined["detail"]["arn"].rsplit("/", 1)[0] + "/" + joined["detail"]["id"]
        later.append({"kind": "join", "incident": i, "event": joined})
    later += [
        {"kind": "non-finding", "incident": None, "event": e}
        for e in non_findings(account, region, noise, rng)
    ]
    rng.shuffle(later)
    return firsts + later


def write_fleet(
    lab_dir: Path,
    pipeline: Pipeline,
    incidents: list[dict[str, Any]],
    *,
    events: list[dict[str, Any]],
    security: AwsEndpoint,
    extra: dict[str, Any],
) -> Path:
    doc = {
        "queue_url": pipeline.queue_url,
        "dlq_url": pipeline.dlq_url,
        "rule": pipeline.rule,
        "bus": pipeline.bus,
        "max_receives": MAX_RECEIVES,
        "security_endpoint": {
            "url": security.url,
            "region": security.region,
            "access_key_id": security.access_key_id,
        },
        "expected_incidents": incidents,
        "events": events,
        **extra,
    }
    path = lab_dir / FLEET_FILE
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def _second_account(lab_dir: Path, state: Any, admin: Any) -> Member:
    """The second member account (lab/fleet_member.py), its cluster served by the lab API server: moto's
    cluster record and the EKS authenticator told, its nodes registered, its responder role in aws-auth."""
    from kubernetes import client  # noqa: PLC0415

    from eksir.lab import eks_auth_setup, fleet_member, k8s_seed, organisation  # noqa: PLC0415
    from eksir.lab.aws_seed import NODEGROUP  # noqa: PLC0415
    from eksir.lab.moto_server import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY  # noqa: PLC0415

    org = state.organisation
    management = AwsEndpoint(state.aws_endpoint, state.region, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
    member = fleet_member.seed_member(management, org["security"], org["external_id"])
    eks_auth_setup.add_cluster(lab_dir / "k8s", member.endpoint, member.cluster)
    for node in member.nodes:
        k8s_seed.create_node(client.CoreV1Api(admin), node, member.region, NODEGROUP)
    organisation.map_responder(admin, member.responder_role_arn)
    return member


def _incident(i: int, pod: dict[str, Any], account: str, cluster: str) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "incident": i,
        "namespace": meta["namespace"],
        "pod": meta["name"],
        "uid": meta["uid"],
        "account": account,
        "cluster": cluster,
    }


def _seed_clusters(lab_dir: Path, state: Any, incidents: int) -> tuple[list[dict[str, Any]], Member]:
    """The attacked pods of both accounts' clusters, by incident number (even: the first member account,
    odd: the second), and the second account."""
    from kubernetes import client, config  # noqa: PLC0415

    truth = json.loads(Path(state.ground_truth).read_text(encoding="utf-8"))["pod"]
    admin = config.new_client_from_config(config_file=state.admin_kubeconfig)
    with admin:
        attacked = admin.sanitize_for_serialization(
            client.CoreV1Api(admin).read_namespaced_pod(truth["name"], truth["namespace"])
        )
        member = _second_account(lab_dir, state, admin)
        first = Placement(NAMESPACES, ((attacked["spec"]["nodeName"], attacked["status"]["hostIP"]),))
        second = Placement(SECOND_NAMESPACES, tuple((n.private_dns, n.private_ip) for n in member.nodes))
        numbers = ([i for i in range(incidents) if i % 2 == 0], [i for i in range(incidents) if i % 2 == 1])
        pods = dict(zip(numbers[0], seed_pods(admin, attacked, numbers[0], first), strict=True))
        pods |= dict(zip(numbers[1], seed_pods(admin, attacked, numbers[1], second), strict=True))
        bind_responder_certificate(admin)
    return [pods[i] for i in range(incidents)], member


def seed_fleet(lab_dir: Path, state: Any, incidents: int, seed: int) -> Path:
    """After a cross-account `lab.up`: the second member account, pods in both accounts' clusters, the
    pipeline, fleet.json. Raises kubernetes/botocore errors."""
    from eksir.lab.fleet_member import rehome_finding  # noqa: PLC0415

    rng = random.Random(seed)
    org = state.organisation
    security = AwsEndpoint(
        state.aws_endpoint, state.region, org["operator_access_key_id"], org["operator_secret_access_key"]
    )
    template = json.loads(Path(state.finding).read_text(encoding="utf-8"))
    pods, member = _seed_clusters(lab_dir, state, incidents)
    findings = [finding_for(template, pod, rng) for pod in pods]
    findings = [rehome_finding(f, member) if i % 2 else f for i, f in enumerate(findings)]
    where = [
        (member.account, member.cluster) if i % 2 else (state.account_id, state.cluster)
        for i in range(incidents)
    ]
    pipeline = create_pipeline(security)
    events = plan_events(
        findings,
        repeats=incidents * 9,
        joins=max(1, incidents // 4),
        noise=max(4, incidents // 4),
        account=state.account_id,
        region=state.region,
        rng=rng,
    )
    accounts = {state.account_id: state.cluster, member.account: member.cluster}
    return write_fleet(
        lab_dir,
        pipeline,
        [_incident(i, pod, *where[i]) for i, pod in enumerate(pods)],
        events=events,
        security=security,
        extra={
            "garbage": ["{not json", " ", "[]", "null"],
            "accounts": accounts,
            "responder_roles": {
                member.account: member.responder_role_arn,
                state.account_id: org["role_template"].replace("{account}", state.account_id),
            },
        },
    )
