"""Node steps where the EC2 playbook cannot act (Auto Mode, Fargate, hybrid), and the checkpoint tier.

Why a module of its own: the EC2 node steps (protect, snapshot, capture over SSM, isolate with a security
group) assume the customer's instance. On other kinds they cannot work, and a plan that lists them would fail
at 3 a.m. or, worse, look as if it contained the node. Each kind plans only what can work there and says, in
a note that the plan output and the case carry, what replaces the rest (README, "Node kinds"):

- Auto Mode (an EC2 managed instance owned by EKS): SSH/SSM are disallowed and no principal can change its
  ENIs or instance profile, and the restrictions extend to its launch volumes. So: no SSM capture, no
  security-group swap, no EC2 step. Evidence is the node monitoring agent's log bundle (`NodeDiagnostic`,
  uploaded to the evidence bucket through a presigned PUT URL); containment is Kubernetes-only (case label,
  cordon, pod isolation: Auto Mode enforces NetworkPolicy natively).
- Fargate: one pod in its own micro-VM; pod-level steps only.
- Hybrid: the customer's own machine outside AWS: Kubernetes steps on the node, no EC2 step.
- Bottlerocket (any compute): capture over SSM lands in the control container and runs through the admin
  container; the plan says so (the command itself is the capture action's).

The checkpoint tier (`--checkpoint`) adds one `k8s.checkpoint_container` per container when the resolution's
preflight says the kubelet checkpoint API can work; otherwise a note says why and that the crictl/ctr capture
covers the container. Pure: the resolution in, drafts and notes out through the builder.
"""

from __future__ import annotations

from typing import Any, Protocol

from eksir.models.resolution import NodeCompute, NodeInfo, NodeOs, Resolution
from eksir.playbooks.plan import NoteLevel

WARN = NoteLevel.WARNING
NODE_DIAGNOSTIC = "k8s.collect_node_diagnostic"
CHECKPOINT = "k8s.checkpoint_container"


class Builder(Protocol):
    """What the privileged-container playbook's builder offers (playbooks/privileged_container._Builder)."""

    resolution: Resolution

    def add(
        self, action_id: str, params: dict[str, Any], rationale: str, after: tuple[str, ...] = ()
    ) -> str: ...

    def note(self, subject: str, message: str, level: NoteLevel = NoteLevel.INFO) -> None: ...


def compute_of(node: NodeInfo | None) -> NodeCompute:
    """The node's compute kind; a node resolved before node kinds existed is judged by its Fargate flag."""
    if node is None:
        return NodeCompute.EC2
    if node.kind is not None:
        return node.kind.compute
    return NodeCompute.FARGATE if node.fargate else NodeCompute.EC2


def kind_note(b: Builder, node: NodeInfo) -> None:
    """Say what kind of node it is and which signals said so (kept in the plan, hence in the case)."""
    kind = node.kind
    if kind is None:
        return
    how = "; ".join(kind.signals) or "no kind signal: an ordinary EC2 node assumed"
    distrusted = any(signal.startswith("DISTRUSTED") for signal in kind.signals)
    level = WARN if distrusted else NoteLevel.INFO
    b.note("node-kind", f"node {node.name} is {kind.compute.value} ({kind.os.value}): {how}", level)
    if kind.os is NodeOs.BOTTLEROCKET and kind.compute is NodeCompute.EC2:
        b.note(
            "node-kind",
            "Bottlerocket: SSM Run Command lands in the control container, which has no view of the host's "
            "processes or containerd; volatile capture runs through the admin container (host namespaces).",
        )


def plan_auto_mode(b: Builder, node: NodeInfo, bucket: str | None, prefix: str) -> list[str]:
    """Kubernetes-only containment plus the NodeDiagnostic log bundle; returns the evidence step keys."""
    _label_and_cordon(b, node, "Auto Mode")
    b.note(
        "node",
        "EKS Auto Mode: the instance is an EC2 managed instance owned by EKS: no SSM capture (SSH and SSM "
        "are disallowed) and no security-group swap, termination protection, snapshot or metadata change "
        "(its ENIs, instance profile and launch volumes cannot be changed by any principal). Instead: the "
        "node monitoring agent's log bundle (NodeDiagnostic) and Kubernetes-only isolation (case label, "
        "cordon, the pod's deny-all NetworkPolicy, which Auto Mode enforces).",
    )
    if not bucket:
        b.note("evidence", "no --evidence-bucket: the NodeDiagnostic log bundle is NOT collected", WARN)
        return []
    key = f"{prefix}node-diagnostic/{node.name}.tar.gz"
    return [
        b.add(
            NODE_DIAGNOSTIC,
            {"node_name": node.name, "bucket": bucket, "key": key},
            "Auto Mode has no SSM: the EKS node monitoring agent uploads the node's log bundle (kubelet, "
            "containerd, kernel, networking) to the evidence bucket through a presigned URL.",
        )
    ]


def plan_fargate(b: Builder) -> None:
    b.note(
        "node",
        "Fargate pod: pod-level steps only. There is no node to cordon, label, protect, snapshot or isolate "
        "and no SSM: the pod's own isolation and the identity steps stand in for them; keep the pod (do "
        "not delete it) until its logs and the audit trail are preserved.",
    )


def plan_hybrid(b: Builder, node: NodeInfo) -> None:
    _label_and_cordon(b, node, "hybrid")
    b.note(
        "node",
        f"hybrid node {node.name}: the customer's own machine outside AWS (providerID "
        f"{node.provider_id!r}): no EC2 step (termination protection, snapshot, security group, metadata). "
        "Capture its volatile state and isolate it on your own network; the Kubernetes steps stand.",
        WARN,
    )


def _label_and_cordon(b: Builder, node: NodeInfo, what: str) -> None:
    b.add("k8s.label_node", {"node_name": node.name}, "Tag the node with the case id so it can be found.")
    b.add(
        "k8s.cordon_node",
        {"node_name": node.name},
        f"Stop new pods landing on the compromised {what} node (running pods, and evidence, stay).",
    )


def plan_checkpoint(b: Builder, wanted: bool) -> list[str]:
    """`--checkpoint`: a kubelet checkpoint per container where the preflight allows; else say why not."""
    node, pod = b.resolution.node, b.resolution.pod
    if not wanted:
        return []
    preflight = node.checkpoint if node is not None else None
    if node is None or pod is None or preflight is None or not preflight.available:
        why = "; ".join(preflight.reasons) if preflight else "the pod or its node is unknown"
        b.note(
            "checkpoint",
            f"--checkpoint: the kubelet checkpoint API is not available ({why}); the crictl/ctr capture "
            "(ssm.capture_volatile) covers the container instead where the node allows it.",
            WARN,
        )
        return []
    b.note("checkpoint", "kubelet checkpoint preflight: " + "; ".join(preflight.reasons))
    return [
        b.add(
            CHECKPOINT,
            {
                "node_name": node.name,
                "namespace": pod.namespace,
                "pod_name": pod.name,
                "pod_uid": pod.uid,
                "container_name": container.name,
            },
            "CRIU checkpoint of the running container (memory pages, open files) through the kubelet; the "
            "archive is written to the node's disk (a node change, recorded) before anything touches it.",
        )
        for container in pod.containers
    ]
