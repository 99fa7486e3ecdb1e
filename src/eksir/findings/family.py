"""Which findings this playbook handles, which plan each runs, and where "not handled" becomes an error.

Three families run the privileged-container playbook (README, "Finding families"):
- `privileged-container`: the audit-log findings of a workload deployed with host access. GuardDuty
  retired `PrivilegeEscalation:Kubernetes/PrivilegedContainer` and
  `Persistence:Kubernetes/ContainerWithSensitiveMount`; their live successors are the
  `AnomalousBehavior.WorkloadDeployed!` types. Historical and exported findings of the old types stay
  around and AWS may add variants, so a type matches by prefix and suffix, not only exactly.
- `runtime-escape`: Runtime Monitoring findings of what a privileged container does next (host mount,
  Docker socket, runc escape, cgroup release agent, reverse shell). Only on an EKS resource: the same
  types on a plain EC2 instance or ECS task are not Kubernetes findings.
- `attack-sequence`: GuardDuty's attack sequences, whose `Sequence` names the clusters, workloads, nodes and
  credentials of one incident.
The reader returns every finding; `require_handled` is for the commands that act on one.
"""

from __future__ import annotations

from collections.abc import Iterable

from eksir.errors import BadInputError, NotAFindingError, NotHandledError
from eksir.models.finding import (
    ATTACK_SEQUENCE_TYPES,
    HANDLED_TYPES,
    PRIVILEGED_CONTAINER_TYPES,
    RUNTIME_ESCAPE_TYPES,
    Finding,
    FindingFamily,
)

_AUDIT_LOG_FORMS = (
    ("PrivilegeEscalation:Kubernetes/", "PrivilegedContainer"),
    ("Persistence:Kubernetes/", "ContainerWithSensitiveMount"),
)
_EKS_RESOURCE = "EKSCluster"


def family_of(finding_type: str, resource_type: str | None = None) -> FindingFamily:
    """Classify a GuardDuty finding type (and its resource type) into the playbook's families."""
    if finding_type in PRIVILEGED_CONTAINER_TYPES or any(
        finding_type.startswith(prefix) and finding_type.endswith(suffix)
        for prefix, suffix in _AUDIT_LOG_FORMS
    ):
        return FindingFamily.PRIVILEGED_CONTAINER
    if finding_type in ATTACK_SEQUENCE_TYPES:
        return FindingFamily.ATTACK_SEQUENCE
    if finding_type in RUNTIME_ESCAPE_TYPES:
        return (
            FindingFamily.RUNTIME_ESCAPE if resource_type == _EKS_RESOURCE else FindingFamily.NOT_KUBERNETES
        )
    if "Kubernetes" in finding_type or resource_type == _EKS_RESOURCE:
        return FindingFamily.OTHER_KUBERNETES
    return FindingFamily.NOT_KUBERNETES


def require_handled(findings: Iterable[Finding]) -> list[Finding]:
    """Return the findings unchanged if this playbook can act on every one of them.

    Raises `NotHandledError` for a Kubernetes finding of another type, `NotAFindingError` for a
    non-Kubernetes one, and `BadInputError` for a handled finding that lacks what its plan starts from: the
    cluster and the workload (no pod to isolate, no cluster to talk to), or for an attack sequence a
    `Sequence` naming at least one resource.
    """
    result = list(findings)
    for finding in result:
        _require_family(finding)
        if finding.family is FindingFamily.ATTACK_SEQUENCE:
            if finding.sequence is None or not finding.sequence.resources:
                raise BadInputError(
                    f"attack sequence {finding.id} has no Sequence naming a resource; "
                    "cannot scope the incident"
                )
            continue
        if (finding.workload is None or not finding.workload.name) and not _runtime_container(finding):
            raise BadInputError(
                f"finding {finding.id} has no Kubernetes workload details; cannot identify the pod"
            )
        if finding.cluster is None:
            raise BadInputError(
                f"finding {finding.id} has no EKS cluster details; cannot identify the cluster"
            )
    return result


def _require_family(finding: Finding) -> None:
    handled = ", ".join(sorted(HANDLED_TYPES))
    if finding.family is FindingFamily.OTHER_KUBERNETES:
        raise NotHandledError(
            f"{finding.type} is a GuardDuty Kubernetes finding but not one this playbook handles "
            f"(handled: {handled}); finding {finding.id}"
        )
    if finding.family is FindingFamily.NOT_KUBERNETES:
        raise NotAFindingError(
            f"{finding.type} is not a GuardDuty Kubernetes finding; eksir handles {handled} "
            f"(finding {finding.id})"
        )


def _runtime_container(finding: Finding) -> bool:
    """A runtime finding without a named pod still names its container, which finds the pod online."""
    return (
        finding.family is FindingFamily.RUNTIME_ESCAPE
        and finding.container is not None
        and bool(finding.container.id)
    )
