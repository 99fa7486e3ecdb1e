"""Credentials reachable from the attacked node: the node role's, and every workload role on the node.

Why here and not in identity.py: identity.py contains the *actor* (whoever made the Kubernetes call); this
module contains what root on the node can take whoever the actor was: the node role's credentials from
IMDS (denied for that instance only, after capture is verified, because the SSM agent and the capture's
upload use them), and every IRSA / Pod Identity role whose projected token sits on the node (one revocation
per role, each approved on its own, its blast radius the other workloads using the role; the trust broken
for the service account, since a stolen IRSA token keeps minting sessions after any cutoff). Pure: from
the resolution only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eksir.models.resolution import IdentityMapping, MappingSource, NodeServiceAccount, Resolution
from eksir.playbooks.identity import role_name_from_arn
from eksir.playbooks.plan import NoteLevel, PlanNote
from eksir.playbooks.steps import StepDraft

KUBELET_NOTE = (
    "the kubelet's credentials stay valid until the node is gone: an IAM Deny does not stop EKS "
    "authentication, so the node keeps its Kubernetes identity (it is cordoned and isolated); terminate it "
    "after the evidence: `eksir recover` plans k8s.drain_terminate_node once the snapshots are verified"
)


def node_credentials_draft(instance_id: str, after: tuple[str, ...]) -> StepDraft:
    """Deny the node role's credentials delivered to this instance, once `after` (capture) is verified."""
    return StepDraft(
        f"iam.deny_instance_credentials:{instance_id}",
        "iam.deny_instance_credentials",
        {"instance_id": instance_id},
        after,
        "Root in the pod can read the node role's credentials from IMDS and use them anywhere: deny the "
        "credentials delivered to this instance (ec2:SourceInstanceARN, VPC + private IP) so the other "
        "nodes keep working; after capture is verified, because the SSM agent uses the same credentials. "
        + KUBELET_NOTE,
    )


@dataclass
class _Role:
    arn: str
    source: MappingSource
    accounts: list[str] = field(default_factory=list)  # namespace/name on the node
    pods: int = 0


def _roles(resolution: Resolution) -> dict[str, _Role]:
    """Every workload role reachable from the node (node service accounts, and the attacker pod's own)."""
    found: dict[str, _Role] = {}
    accounts = list(resolution.node_service_accounts)
    pod = resolution.pod
    if pod is not None and pod.aws_roles:
        account = NodeServiceAccount(
            namespace=pod.namespace,
            name=pod.service_account or "default",
            pods=(pod.name,),
            roles=pod.aws_roles,
        )
        accounts.append(account)
    for account in accounts:
        for mapping in account.roles:
            _add(found, mapping, account)
    return found


def _add(found: dict[str, _Role], mapping: IdentityMapping, account: NodeServiceAccount) -> None:
    if not mapping.principal_arn or not role_name_from_arn(mapping.principal_arn):
        return
    role = found.setdefault(mapping.principal_arn, _Role(mapping.principal_arn, mapping.source))
    name = f"{account.namespace}/{account.name}"
    if name not in role.accounts:
        role.accounts.append(name)
        role.pods += len(account.pods)


def workload_role_drafts(resolution: Resolution) -> list[StepDraft]:
    """One revocation per role (approved per role) and one trust break per role and service account."""
    drafts: list[StepDraft] = []
    for arn, role in sorted(_roles(resolution).items()):
        name = role_name_from_arn(arn)
        assert name is not None  # filtered by _add
        others = [u for u in resolution.role_users.get(arn, ()) if u not in role.accounts]
        used_by = (
            *(f"{a} (pods on the attacked node)" for a in role.accounts),
            *(f"{u} (elsewhere in the cluster)" for u in others),
        )
        drafts.append(
            StepDraft(
                f"iam.revoke_role_sessions:{name}",
                "iam.revoke_role_sessions",
                {"role_name": name, "used_by": list(used_by)},
                (),
                f"{role.source.value} role of {', '.join(role.accounts)} on the attacked node: root there "
                "reads the projected token; deny every session issued before the step is applied.",
            )
        )
        drafts += [_trust_draft(name, account, role.source) for account in role.accounts]
    return drafts


def _trust_draft(role_name: str, account: str, source: MappingSource) -> StepDraft:
    namespace, service_account = account.split("/", 1)
    mechanism = "pod-identity" if source is MappingSource.POD_IDENTITY else "irsa"
    return StepDraft(
        f"iam.break_role_trust:{role_name}:{account}",
        "iam.break_role_trust",
        {
            "role_name": role_name,
            "namespace": namespace,
            "service_account": service_account,
            "mechanism": mechanism,
        },
        (),
        f"A {mechanism} token of {account} stolen from the node stays valid after the cutoff and mints new "
        "sessions: deny that service account in the role's trust policy (reversible).",
    )


def node_notes(resolution: Resolution) -> list[PlanNote]:
    """The kubelet's identity, and every Secret and token mounted on the node (the rotation worklist)."""
    notes: list[PlanNote] = []
    if resolution.instance is not None:
        notes.append(PlanNote(subject="node credentials", message=KUBELET_NOTE, level=NoteLevel.WARNING))
    secrets = sorted({s for a in resolution.node_service_accounts for s in a.mounted_secrets})
    tokens = [
        f"{a.namespace}/{a.name} ({len(a.pods)} pod(s): {', '.join(a.projected_tokens[:3])})"
        for a in resolution.node_service_accounts
        if a.projected_tokens
    ]
    if secrets:
        notes.append(
            PlanNote(
                subject="rotation worklist",
                message="Secrets mounted or referenced by pods on the attacked node (root there reads "
                "them all): rotate " + ", ".join(secrets[:50]) + (" ..." if len(secrets) > 50 else ""),
                level=NoteLevel.WARNING,
            )
        )
    if tokens:
        notes.append(
            PlanNote(
                subject="rotation worklist",
                message="service-account tokens on the attacked node stay valid until they expire or their "
                "pod is deleted (bound tokens die with their pod; EKS accepts tokens up to 90 days old): "
                + "; ".join(tokens[:30]),
                level=NoteLevel.WARNING,
            )
        )
    return notes
