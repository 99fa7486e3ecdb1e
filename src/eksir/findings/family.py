"""Which findings this playbook handles, and the one place a caller turns "not handled" into an error.

GuardDuty retired `PrivilegeEscalation:Kubernetes/PrivilegedContainer`; its live successor is
`PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer`. Historical and
exported findings of the old type stay around, and AWS may add further variants, so a type matches by its
`PrivilegeEscalation:Kubernetes/` prefix and `PrivilegedContainer` suffix, not only by exact string. The
reader returns every finding; `require_handled` is for the commands that act on one.
"""

from __future__ import annotations

from collections.abc import Iterable

from eksir.errors import BadInputError, NotAFindingError, NotHandledError
from eksir.models.finding import HANDLED_TYPES, Finding, FindingFamily

_PREFIX = "PrivilegeEscalation:Kubernetes/"
_SUFFIX = "PrivilegedContainer"


def family_of(finding_type: str, resource_type: str | None = None) -> FindingFamily:
    """Classify a GuardDuty finding type (and its resource type) into the playbook's families."""
    if finding_type in HANDLED_TYPES or (finding_type.startswith(_PREFIX) and finding_type.endswith(_SUFFIX)):
        return FindingFamily.PRIVILEGED_CONTAINER
    if "Kubernetes" in finding_type or resource_type == "EKSCluster":
        return FindingFamily.OTHER_KUBERNETES
    return FindingFamily.NOT_KUBERNETES


def require_handled(findings: Iterable[Finding]) -> list[Finding]:
    """Return the findings unchanged if this playbook can act on every one of them.

    Raises `NotHandledError` for a Kubernetes finding of another type, `NotAFindingError` for a
    non-Kubernetes one, and `BadInputError` for a handled finding that lacks the cluster or the workload
    (without them there is no pod to isolate and no cluster to talk to).
    """
    handled = ", ".join(sorted(HANDLED_TYPES))
    result = list(findings)
    for finding in result:
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
        if finding.workload is None or not finding.workload.name:
            raise BadInputError(
                f"finding {finding.id} has no Kubernetes workload details; cannot identify the pod"
            )
        if finding.cluster is None:
            raise BadInputError(
                f"finding {finding.id} has no EKS cluster details; cannot identify the cluster"
            )
    return result
