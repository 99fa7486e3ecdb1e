"""The fleet lab (`eksir lab up --scenario fleet`): many attacked pods and the AWS event pipeline.

On top of the cross-account lab (security, management and member accounts in moto; eksir answers from the
security account through `eksir-responder`), this seeds `incidents` more privileged pods, spread over a set
of namespaces and created through the real kube-apiserver on the attacked node, and builds in the security
account what `eksir serve` consumes: an SQS queue with a dead-letter queue (RedrivePolicy) fed by an
EventBridge rule on the default bus with the GuardDuty event pattern (findings and GuardDuty's runtime
coverage/health events, so the worker's rejects are exercised too). moto's EventBridge delivers to SQS.

`fleet.json` lists the events to send (each incident's finding, repeats with a higher count and a later
updatedAt, a second finding about the same pod that joins its case, non-findings) and the expected incidents,
so a bench or test sends them with PutEvents and scores the cases.

The fleet's one limit here: a single member account (the second account of issue 20's fleet lab is not seeded
by this version; the worker's routing per account is the cross-account code's and is tested there).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eksir.lab.moto_server import AwsEndpoint

FLEET_FILE = "fleet.json"
NAMESPACES = ("team-a", "team-b", "team-c", "team-d")
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


def seed_pods(admin: Any, template_pod: dict[str, Any], incidents: int) -> list[dict[str, Any]]:
    """`incidents` privileged pods like the attacker's, on its node, over NAMESPACES; returns them Running."""
    from kubernetes import client  # noqa: PLC0415 - the lab's Kubernetes side imports it lazily

    from eksir.lab.k8s_seed import mark_running  # noqa: PLC0415

    core = client.CoreV1Api(admin)
    for namespace in NAMESPACES:  # the lab runs no controller-manager: the default account is created here
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
    node_ip = str(template_pod["status"]["hostIP"])
    node = _Node(private_ip=node_ip)
    pods = []
    for i in range(incidents):
        namespace = NAMESPACES[i % len(NAMESPACES)]
        name = f"fleet-debug-{i:03d}"
        spec = copy.deepcopy(template_pod["spec"])
        for key in ("serviceAccount", "serviceAccountName", "tolerations", "enableServiceLinks"):
            spec.pop(key, None)
        spec["volumes"] = [v for v in spec.get("volumes", []) if "hostPath" in v]
        for container in spec["containers"]:
            container["volumeMounts"] = [
                m for m in container.get("volumeMounts", []) if m["name"] == "host-root"
            ]
        spec["automountServiceAccountToken"] = False
        body = {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}
        core.create_namespaced_pod(namespace, body)
        ip = f"{node_ip.rsplit('.', 1)[0]}.{(i % 120) + 130}"
        mark_running(core, name, namespace, node, ip)  # type: ignore[arg-type]
        pods.append(admin.sanitize_for_serialization(core.read_namespaced_pod(name, namespace)))
    return pods


def bind_responder_certificate(admin: Any) -> None:
    """Bind the responder ClusterRole (`eksir permissions`) to the lab's responder client certificate.

    Why: the fleet's workers reach the cluster with `--kubeconfig` (the responder's certificate) rather than
    EKS tokens. Each case assumes `eksir-responder` with its own session, and the lab's stand-in EKS
    authenticator finds a new session by reading moto's whole data.json, about 30 s in this lab (26 MB):
    longer than the API server's webhook timeout. The permissions are the same ClusterRole EKS tokens get.
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
    pods: list[dict[str, Any]],
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
        "expected_incidents": [
            {
                "incident": i,
                "namespace": p["metadata"]["namespace"],
                "pod": p["metadata"]["name"],
                "uid": p["metadata"]["uid"],
            }
            for i, p in enumerate(pods)
        ],
        "events": events,
        **extra,
    }
    path = lab_dir / FLEET_FILE
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def seed_fleet(lab_dir: Path, state: Any, incidents: int, seed: int) -> Path:
    """After a cross-account `lab.up`: pods, pipeline, fleet.json. Raises kubernetes/botocore errors."""
    from kubernetes import config  # noqa: PLC0415

    rng = random.Random(seed)
    org = state.organisation
    security = AwsEndpoint(
        state.aws_endpoint, state.region, org["operator_access_key_id"], org["operator_secret_access_key"]
    )
    template = json.loads(Path(state.finding).read_text(encoding="utf-8"))
    truth = json.loads(Path(state.ground_truth).read_text(encoding="utf-8"))["pod"]
    admin = config.new_client_from_config(config_file=state.admin_kubeconfig)
    with admin:
        from kubernetes import client  # noqa: PLC0415

        attacked = admin.sanitize_for_serialization(
            client.CoreV1Api(admin).read_namespaced_pod(truth["name"], truth["namespace"])
        )
        pods = seed_pods(admin, attacked, incidents)
        bind_responder_certificate(admin)
    findings = [finding_for(template, pod, rng) for pod in pods]
    pipeline = create_pipeline(security)
    noise = max(4, incidents // 4)
    events = plan_events(
        findings,
        repeats=incidents * 9,
        joins=max(1, incidents // 4),
        noise=noise,
        account=state.account_id,
        region=state.region,
        rng=rng,
    )
    return write_fleet(
        lab_dir,
        pipeline,
        pods,
        events=events,
        security=security,
        extra={"garbage": ["{not json", " ", "[]", "null"]},
    )
