"""The incident graph an attack sequence names: each workload as a finding of its own, and the rest.

Triage judges, and the playbook plans, one workload at a time; an attack sequence names several. Each of its
`KUBERNETES_WORKLOAD` resources becomes a copy of the sequence finding narrowed to that workload (namespace,
name, uid, its containers' images from the sequence's `CONTAINER` resources), in the sequence's cluster, with
the sequence's first principal as the actor. Nodes (`EC2_INSTANCE` resources) and
credentials (`ACCESS_KEY`, actors) are listed for the plan and the report. Pure: models in, models out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eksir.findings.actor import classify_actor
from eksir.findings.bounded import build
from eksir.models.finding import (
    Actor,
    AttackSequence,
    Container,
    Finding,
    FindingFamily,
    SequenceActor,
    SequenceResource,
    Workload,
)

WORKLOAD = "KUBERNETES_WORKLOAD"
_USER_KEY_TYPES = {"iamuser": "IAMUser", "assumedrole": "AssumedRole", "role": "Role", "root": "Root"}


@dataclass(frozen=True)
class Scope:
    """Everything a sequence names, by kind (ids as GuardDuty gave them: attacker-controlled text)."""

    clusters: tuple[str, ...]
    workloads: tuple[Finding, ...]
    nodes: tuple[str, ...]
    principals: tuple[str, ...]
    containers: tuple[str, ...]


def scope_of(finding: Finding) -> Scope:
    """The sequence's scope; a finding without a sequence is its own one workload."""
    sequence = finding.sequence
    if sequence is None:
        return Scope(
            (finding.cluster.name,) if finding.cluster else (), (finding,), _own_node(finding), (), ()
        )
    resources = sequence.resources
    # EC2_INSTANCE resources only: a cluster's `ec2InstanceUids` lists every node hosting it.
    nodes = [r.uid for r in resources if r.resource_type == "EC2_INSTANCE"]
    principals = [r.uid for r in resources if r.resource_type == "ACCESS_KEY"]
    principals += [
        a.credential_uid or a.user_name or a.id for a in sequence.actors if a.user_name or a.credential_uid
    ]
    return Scope(
        clusters=tuple(dict.fromkeys(r.name or r.uid for r in resources if r.resource_type == "EKS_CLUSTER")),
        workloads=tuple(
            workload_finding(finding, sequence, r) for r in resources if r.resource_type == WORKLOAD
        ),
        nodes=tuple(dict.fromkeys(nodes)),
        principals=tuple(dict.fromkeys(principals)),
        containers=tuple(r.uid for r in resources if r.resource_type == "CONTAINER"),
    )


def _own_node(finding: Finding) -> tuple[str, ...]:
    return (finding.instance_id,) if finding.instance_id else ()


def workload_finding(finding: Finding, sequence: AttackSequence, resource: SequenceResource) -> Finding:
    """The sequence finding narrowed to one of its workloads (no sequence of its own: judged as one pod)."""
    images = {r.uid: r for r in sequence.resources if r.resource_type == "CONTAINER"}
    containers = tuple(
        build(Container, name=images[uid].name, image=images[uid].image)
        for uid in resource.container_uids
        if uid in images
    )
    workload = build(
        Workload,
        namespace=resource.namespace,
        name=resource.name,
        uid=resource.uid if _looks_like_uid(resource.uid) else None,
        type=(resource.workload_type or "pods").lower(),
        containers=containers,
    )
    update = {"workload": workload, "sequence": None, "actor": sequence_actor(sequence)}
    return finding.model_copy(update={**update, "family": FindingFamily.PRIVILEGED_CONTAINER})


def _looks_like_uid(value: str) -> bool:
    parts = value.split("-")
    return len(parts) == 5 and all(part.isalnum() for part in parts)


def sequence_actor(sequence: AttackSequence) -> Actor | None:
    """The sequence's first principal with a name or credential, classified as a finding's actor is."""
    actors = sequence_actors(sequence)
    return actors[0] if actors else None


def sequence_actors(sequence: AttackSequence) -> list[Actor]:
    """Every principal of the sequence with a name or credential (the hunt searches for all of them)."""
    return [_classified(a) for a in sequence.actors if a.user_name or a.credential_uid or a.user_uid]


def _classified(actor: SequenceActor) -> Actor:
    keys = {
        "accessKeyId": actor.credential_uid,
        "principalId": actor.user_uid,
        "userName": actor.user_name,
        "userType": _USER_KEY_TYPES.get((actor.user_type or "").lower(), actor.user_type),
    }
    user: dict[str, Any] = {"username": actor.user_name, "uid": None, "groups": [], "sessionName": []}
    return classify_actor(user, keys)
