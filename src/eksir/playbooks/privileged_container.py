"""The privileged-container playbook: finding + online resolution -> Plan (pure, no I/O).

Why the order is what it is (DESIGN.md, "Domain rules"): volatile evidence dies with the node's network, so
capture and snapshots come before `ec2.isolate_instance` and before anything destructive on the node, and
node isolation waits until capture is *verified*. Identity revocation and pod isolation destroy no evidence
and stop the attacker soonest, so they start at once and in parallel, except what cuts the node's own
credentials (the node role's deny for the instance, a node-role actor's revocation): the SSM agent and the
capture's upload use them, so those wait for the verified capture (playbooks/credentials.py).
Revoking IAM sessions alone leaves Kubernetes access (EKS authenticates with a presigned GetCallerIdentity
that works under a Deny), so every mapping (access entry, aws-auth) is removed as well. Anything the
resolution could not tell us becomes a note, never a crash and never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from eksir.actions.base import Phase
from eksir.models.finding import ActorKind, Finding
from eksir.models.resolution import NodeCompute, Resolution
from eksir.playbooks.credentials import node_credentials_draft, node_notes, workload_role_drafts
from eksir.playbooks.fallbacks import offer_isolation_without_evidence
from eksir.playbooks.identity import dedupe, identity_steps, is_root
from eksir.playbooks.node_kinds import (
    compute_of,
    kind_note,
    plan_auto_mode,
    plan_checkpoint,
    plan_fargate,
    plan_hybrid,
)
from eksir.playbooks.plan import NoteLevel, Plan, PlanNote, PlanStep
from eksir.playbooks.steps import DESTRUCTIVE_ACTIONS, PHASES, StepDraft, number_steps

PLAYBOOK_ID = "privileged-container"
SOURCE_PRINCIPAL_NOTE = (
    "the actor is a role session: revoking the role's older sessions does not stop whoever assumed it from "
    "assuming it again; `eksir hunt` follows the role chain to the source principal (its AssumeRole calls): "
    "contain that principal too (its keys or sessions), or break the role's trust for it"
)
ROOT_NOTE = (
    "the actor is the account's root user: no step is planned for its keys (root's permissions cannot be "
    "changed by policy and a responder role cannot manage root's keys); follow the root-credential runbook "
    "(README, 'Root credentials'): sign in as root, delete its access keys, reset password and MFA"
)
WARN = NoteLevel.WARNING


@dataclass(frozen=True)
class PlaybookOptions:
    """Responder choices that change the plan (CLI flags)."""

    case_id: str | None = None
    evidence_bucket: str | None = None
    evidence_prefix: str | None = None
    orphan_pod: bool = False
    pause_container: bool = False
    capture_wait_seconds: float | None = None
    """How long capture's verify waits for the command, and for its uploads (None: the action's defaults)."""
    keep_ssm_egress: bool = True
    strict_isolation: bool = False
    """`--strict-isolation`: the isolation group starts with no egress at all (not even the SSM endpoints)."""
    isolate_subnet: bool = False
    """`--isolate-subnet`: a deny-all network ACL on the node's subnets too (tracked flows; whole subnet)."""
    audit_lookback: timedelta = timedelta(hours=24)
    checkpoint: bool = False
    """`--checkpoint`: a kubelet (CRIU) checkpoint of each container where the node's preflight allows."""
    extra_notes: tuple[str, ...] = field(default=())


@dataclass
class _Builder:
    finding: Finding
    resolution: Resolution
    options: PlaybookOptions
    drafts: list[StepDraft] = field(default_factory=list)
    notes: list[PlanNote] = field(default_factory=list)
    capture_keys: tuple[str, ...] = ()
    """The capture (and pause) steps: what must be verified before the node's credentials are cut."""

    def add(self, action_id: str, params: dict[str, Any], rationale: str, after: tuple[str, ...] = ()) -> str:
        key = f"{action_id}#{len(self.drafts)}"
        self.drafts.append(StepDraft(key, action_id, params, after, rationale))
        return key

    def note(self, subject: str, message: str, level: NoteLevel = NoteLevel.INFO) -> None:
        self.notes.append(PlanNote(subject=subject, message=message, level=level))


def build_plan(finding: Finding, resolution: Resolution, options: PlaybookOptions | None = None) -> Plan:
    """Turn what is known into ordered, approvable steps; what is unknown into notes."""
    opts = options or PlaybookOptions()
    builder = _Builder(finding, resolution, opts)
    _pod_steps(builder)
    _node_steps(builder)
    identity = [*workload_role_drafts(resolution), *identity_steps(finding, resolution, builder.capture_keys)]
    builder.drafts.extend(dedupe(identity))
    builder.notes.extend(_identity_notes(finding, resolution))
    builder.notes.extend(node_notes(resolution))
    _evidence_queries(builder)
    steps = number_steps(builder.drafts)
    steps = _apply_outage(steps, resolution, builder)
    steps = offer_isolation_without_evidence(steps)
    for extra in opts.extra_notes:
        builder.note("options", extra)
    for warning in resolution.warnings:
        builder.note("resolution", warning, WARN)
    return Plan(
        playbook=PLAYBOOK_ID,
        case_id=opts.case_id,
        finding_id=finding.id,
        cluster_name=resolution.cluster.name,
        created_at=resolution.resolved_at,
        steps=tuple(steps),
        notes=tuple(builder.notes),
        outage=resolution.outage.items,
    )


def _pod_steps(b: _Builder) -> None:
    """Isolate the exact pod (by uid), from the resolution or, failing that, from the finding itself."""
    pod = b.resolution.pod
    workload = b.finding.workload
    if pod is not None:
        namespace, name, uid = pod.namespace, pod.name, pod.uid
    elif workload is not None and workload.namespace and workload.name and workload.uid:
        namespace, name, uid = workload.namespace, workload.name, workload.uid
        b.note("pod", "the pod was not found online (deleted?); isolation planned from the finding", WARN)
    else:
        b.note("pod", "no pod identity (namespace/name/uid) known: pod isolation not planned", WARN)
        return
    key = b.add(
        "k8s.isolate_pod",
        {"namespace": namespace, "pod_name": name, "pod_uid": uid},
        "Cut the attacker's pod off (deny-all NetworkPolicy on a case label on this exact pod, by uid); "
        "destroys no evidence, so it starts at once.",
    )
    if pod is not None and (pod.host_network or not pod.owner_chain):
        why = "uses the host network" if pod.host_network else "is standalone (no ownerReferences)"
        control = (
            "node isolation is the primary control."
            if compute_of(b.resolution.node) is NodeCompute.EC2
            else "this kind of node has no security-group isolation either: revoke the identities and "
            "delete the pod once its evidence is kept."
        )
        b.note(
            "pod",
            f"the pod {why}: a NetworkPolicy will not isolate it (never for hostNetwork; the VPC CNI applies "
            f"none to standalone pods); {control}",
            WARN,
        )
    if b.resolution.node is not None and b.resolution.node.fargate:
        b.note(
            "pod",
            "Fargate: VPC CNI network policies are not applied to Fargate pods, so the NetworkPolicy may "
            "not isolate it; use a pod security group or delete the pod once evidence is kept.",
            WARN,
        )
    if b.options.orphan_pod:
        b.add(
            "k8s.orphan_pod",
            {"namespace": namespace, "pod_name": name, "pod_uid": uid},
            "Detach the isolated pod from its ReplicaSet so the service runs on a replacement while the "
            "suspect pod is preserved.",
            after=(key,),
        )


def _node_steps(b: _Builder) -> None:
    """Preserve, then capture, then (only when capture is verified) isolate the node; on a node that is not
    the customer's EC2 instance, only what can work there (playbooks/node_kinds.py)."""
    node, instance = b.resolution.node, b.resolution.instance
    compute = compute_of(node)
    if node is not None:
        kind_note(b, node)
    if compute is not NodeCompute.EC2:
        if compute is NodeCompute.FARGATE:
            plan_fargate(b)
        elif compute is NodeCompute.AUTO_MODE and node is not None:
            plan_auto_mode(b, node, b.options.evidence_bucket, _prefix(b))
        elif node is not None:
            plan_hybrid(b, node)
        plan_checkpoint(b, b.options.checkpoint)
        return
    checkpoints = plan_checkpoint(b, b.options.checkpoint)
    if node is None:
        b.note("node", "the pod's node is unknown: no node steps planned", WARN)
    else:
        b.add("k8s.label_node", {"node_name": node.name}, "Tag the node with the case id so it can be found.")
        b.add(
            "k8s.cordon_node",
            {"node_name": node.name},
            "Stop new pods landing on a compromised node (running pods, and evidence, stay).",
        )
        b.add(
            "k8s.block_node_disruption",
            {"node_name": node.name},
            "Keep Karpenter from consolidating or replacing the node (do-not-disrupt on node and NodeClaim).",
        )
    if instance is None:
        if node is not None:
            b.note("instance", "the node's EC2 instance is unknown: no snapshot/protection/isolation", WARN)
        return
    _instance_steps(b, checkpoints)


def _prefix(b: _Builder) -> str:
    return b.options.evidence_prefix or f"eksir/{b.options.case_id or b.finding.id}/volatile/"


def _instance_steps(b: _Builder, checkpoints: list[str]) -> None:
    """Checkpoints (`--checkpoint`) go before isolation: the node proxy reaches the kubelet over the node's
    network, which the isolation group closes."""
    instance = b.resolution.instance
    assert instance is not None  # guarded by the caller
    iid = instance.instance_id
    keep: list[str] = []
    if instance.spot:
        b.note(
            "instance",
            f"{iid} is a Spot instance: termination protection cannot be enabled and scale-in protection "
            "does not stop an interruption; snapshots are taken first.",
            WARN,
        )
    else:
        keep.append(
            b.add(
                "ec2.enable_termination_protection",
                {"instance_id": iid},
                "Keep the node (and its evidence) from being terminated by API.",
            )
        )
    if instance.autoscaling_group:
        keep.append(
            b.add(
                "asg.protect_instance",
                {"autoscaling_group": instance.autoscaling_group, "instance_id": iid},
                "Keep the Auto Scaling group from scaling the node in.",
            )
        )
        keep.append(
            b.add(
                "asg.suspend_processes",
                {"autoscaling_group": instance.autoscaling_group},
                "Scale-in protection does not stop health-check replacement: suspend ReplaceUnhealthy, "
                "AZRebalance and HealthCheck for the case (isolation makes the node look unhealthy).",
            )
        )
    evidence = [
        *checkpoints,
        b.add("ec2.snapshot_volumes", {"instance_id": iid}, "Crash-consistent copy of every volume."),
    ]
    evidence.extend(_capture_steps(b, iid))
    isolation = _isolate_instance(b, iid, (*keep, *evidence))
    b.capture_keys = tuple(
        k for k in evidence if k.startswith(("ssm.capture_volatile", "ssm.pause_container", "k8s.checkpoint"))
    )
    if not b.capture_keys:
        b.note(
            "node credentials",
            "no volatile capture planned: the node role's deny for this instance runs after isolation, and "
            "it also stops the node's SSM agent (collect any evidence by hand before approving it)",
            WARN,
        )
    b.drafts.append(node_credentials_draft(iid, b.capture_keys or isolation))


def _capture_steps(b: _Builder, iid: str) -> list[str]:
    pod = b.resolution.pod
    container_ids = [
        c.container_id.removeprefix("containerd://")
        for c in (pod.containers if pod else ())
        if c.container_id
    ]
    if not b.options.evidence_bucket:
        b.note(
            "evidence",
            "no --evidence-bucket: volatile evidence (processes, connections, container state) is NOT "
            "captured; node isolation keeps SSM egress so it can still be collected.",
            WARN,
        )
        return []
    prefix = _prefix(b)
    params: dict[str, Any] = {
        "instance_id": iid,
        "container_ids": container_ids,
        "pod_uid": pod.uid if pod else None,
        "bucket": b.options.evidence_bucket,
        "prefix": prefix,
    }
    if b.options.capture_wait_seconds is not None:
        params["wait_seconds"] = params["upload_wait_seconds"] = b.options.capture_wait_seconds
    node = b.resolution.node
    if node is not None and node.bottlerocket:
        params["host_os"] = "bottlerocket"
        b.note(
            "evidence",
            f"{node.name} runs Bottlerocket ({node.os_image}): capture goes through the admin container "
            "(apiclient exec admin sheltie), which must be enabled; the host has no aws CLI to upload with.",
            WARN,
        )
    capture = b.add(
        "ssm.capture_volatile",
        params,
        "Volatile evidence over SSM Run Command (crictl/ctr, never docker); lost when the node is cut off.",
    )
    return [capture, *_pause_steps(b, iid, container_ids, capture, prefix)]


def _pause_steps(b: _Builder, iid: str, container_ids: list[str], capture: str, prefix: str) -> list[str]:
    """`--pause-container`: one pause per container after the capture; its output goes beside the capture."""
    if not b.options.pause_container:
        return []
    if not container_ids:
        b.note("container", "--pause-container given but no container id is known", WARN)
    return [
        b.add(
            "ssm.pause_container",
            {"instance_id": iid, "container_id": cid, "bucket": b.options.evidence_bucket, "prefix": prefix},
            "Freeze the container's processes after capture (memory kept, nothing runs).",
            after=(capture,),
        )
        for cid in container_ids
    ]


def _isolate_instance(b: _Builder, iid: str, after: tuple[str, ...]) -> tuple[str, ...]:
    """Isolate (egress to the VPC's SSM endpoints only, or none when strict), then once capture is verified
    remove that egress and switch the metadata endpoint off; the subnet NACL only when asked for."""
    captured = any(key.startswith("ssm.capture_volatile") for key in after)
    keep_ssm = b.options.keep_ssm_egress and not b.options.strict_isolation
    isolate = b.add(
        "ec2.isolate_instance",
        {"instance_id": iid, "keep_ssm_egress": keep_ssm},
        "Isolation security group on every ENI (pods' branch ENIs too), each passed through an allow-all "
        "group so tracked connections are cut; runs after capture and snapshots are verified.",
        after=after,
    )
    last = (isolate,)
    if keep_ssm and captured:
        last = (
            b.add(
                "ec2.tighten_isolation",
                {"instance_id": iid},
                "Capture is verified: the SSM endpoints egress is now only a way out; remove it.",
                after=(isolate, *after),
            ),
        )
    if captured or b.options.strict_isolation:
        b.add(
            "ec2.disable_metadata",
            {"instance_id": iid},
            "Security groups do not filter the metadata service: switch it off (node-role credentials).",
            after=(*last, *after),
        )
    else:
        b.note(
            "node",
            "no volatile capture planned: the isolation group keeps tcp/443 to the VPC's SSM endpoints "
            "and the metadata endpoint stays on, so evidence can still be collected; "
            "--strict-isolation closes both.",
            WARN,
        )
    if b.options.isolate_subnet:
        b.add(
            "ec2.deny_subnet_nacl",
            {"instance_id": iid},
            "Stateless cut of tracked flows (NAT gateway, load balancer, ICMP): the WHOLE subnet loses "
            "its network.",
            after=last,
        )
    return last


def _identity_notes(finding: Finding, resolution: Resolution) -> list[PlanNote]:
    kind = finding.actor.kind if finding.actor else None
    notes: list[PlanNote] = []
    if kind is None:
        notes.append(PlanNote(subject="identity", message="the finding names no actor", level=WARN))
    elif is_root(finding, resolution):
        notes.append(PlanNote(subject="identity", message=ROOT_NOTE, level=NoteLevel.BLOCKING))
    elif kind is ActorKind.IAM_ROLE:
        notes.append(PlanNote(subject="identity", message=SOURCE_PRINCIPAL_NOTE, level=WARN))
    elif kind in (ActorKind.NODE, ActorKind.EC2_INSTANCE_ROLE):
        notes.append(
            PlanNote(
                subject="identity",
                message="the actor is a node identity: its aws-auth/access-entry mapping is EKS-managed and "
                "shared by the node group, so it is NOT removed (that would break every node).",
                level=WARN,
            )
        )
    if resolution.pod is not None and resolution.pod.service_account:
        notes.append(
            PlanNote(
                subject="identity",
                message=f"the pod runs as {resolution.pod.namespace}/{resolution.pod.service_account}; "
                "if that service account has an IRSA/Pod Identity role the pod can mint new sessions "
                "until it is isolated.",
            )
        )
    return notes


def _evidence_queries(b: _Builder) -> None:
    actor = b.finding.actor
    if actor is None or not actor.username:
        b.note("evidence", "actor username unknown: audit-log and secrets worklist steps omitted", WARN)
        return
    accounts = b.resolution.node_service_accounts
    b.add(
        "k8s.secrets_worklist",
        {
            "username": actor.username,
            "groups": list(actor.groups),
            "mounted_on_node": sorted({s for a in accounts for s in a.mounted_secrets}),
            "node_tokens": [f"{a.namespace}/{a.name}: {t}" for a in accounts for t in a.projected_tokens],
        },
        "List the secrets this identity could read, and every Secret and token mounted on the attacked "
        "node (root there reads them all): they must be rotated.",
    )
    start = b.finding.event_first_seen or b.finding.created_at or b.resolution.resolved_at
    b.add(
        "logs.audit_actor_changes",
        {
            "cluster_name": b.resolution.cluster.name,
            "username": actor.username,
            "since": (start - b.options.audit_lookback).isoformat(),
        },
        "Everything the actor changed in the cluster (EKS audit log) from before first sight.",
    )


def _apply_outage(steps: list[PlanStep], resolution: Resolution, b: _Builder) -> list[PlanStep]:
    """Blocking outage items block the steps they name (the engine runs them only under an outage override
    with a reason) and force approval on them; all items are shown."""
    result: list[PlanStep] = []
    for step in steps:
        reasons = [
            f"{item.subject}: {item.message}"
            for item in resolution.outage.items
            if item.blocking and (step.action_id in item.steps or step.id in item.steps)
        ]
        if reasons:
            update = {
                "requires_approval": True,
                "approval_reasons": (*step.approval_reasons, *reasons),
                "outage_blocks": tuple(reasons),
            }
            result.append(step.model_copy(update=update))
        else:
            result.append(step)
    for item in resolution.outage.items:
        level = NoteLevel.BLOCKING if item.blocking else NoteLevel.INFO
        b.note(f"outage: {item.subject}", item.message, level)
    return result


__all__ = ["DESTRUCTIVE_ACTIONS", "PHASES", "PLAYBOOK_ID", "Phase", "PlaybookOptions", "build_plan"]
