"""Break-glass access in `eksir plan | respond`: notice that the responder's AWS identity cannot work in the
cluster, and plan the grant instead of failing on the first Kubernetes call.

Only for the EKS-token path: there the Kubernetes identity *is* the responder's AWS identity, which an access
entry or aws-auth mapping can admit. A kubeconfig names some other identity; its 401/403 stays an error
(exit 8), because granting the AWS identity access would not change what that kubeconfig can do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from eksir.actions.containment.eks_grant_access import RESPONDER_GROUP
from eksir.clients.aws import AwsClients, aws_call
from eksir.clients.k8s_access import access_gap
from eksir.clients.kubeconfig import SourceKind
from eksir.engine import StateStore, StepStatus, rollback
from eksir.engine.context import ContextFactory, KubeProvider
from eksir.errors import NotFoundError, PermissionDeniedError, RefusedError, StepFailedError
from eksir.models.finding import Finding
from eksir.playbooks.break_glass import STEP_ID, break_glass_plan, grant_step, with_grant
from eksir.playbooks.plan import Plan, PlanStep
from eksir.resolve.cluster import describe_cluster, uses_access_entries
from eksir.store import CaseHandle

_GRANTED = frozenset({StepStatus.APPLIED, StepStatus.VERIFIED})


def responder_principal(aws: AwsClients) -> str:
    """The IAM user or role ARN behind the caller's credentials (a role with its path, from IAM).

    Raises RefusedError for the root user, PermissionDeniedError when STS refuses.
    """
    with aws_call("identify the responder (sts:GetCallerIdentity)"):
        arn = str(aws("sts").get_caller_identity()["Arn"])
    kind_and_name = arn.split(":", 5)[5]
    account = arn.split(":")[4]
    if kind_and_name == "root":
        raise RefusedError("break-glass access for the account root user is refused: use a role")
    if kind_and_name.startswith("assumed-role/"):
        role = kind_and_name.split("/")[1]
        try:
            with aws_call(f"read IAM role {role}"):
                return str(aws("iam").get_role(RoleName=role)["Role"]["Arn"])
        except NotFoundError:
            return f"arn:aws:iam::{account}:role/{role}"
    return f"arn:aws:iam::{account}:{kind_and_name}"


def grant_plan(
    finding: Finding, aws: AwsClients, kube: KubeProvider, case: CaseHandle, admin_kubeconfig: Path | None
) -> Plan | None:
    """The break-glass plan when the responder has no access through an EKS token; None otherwise.

    Raises PermissionDeniedError when this case already granted access and it still does not work (the group
    is bound to nothing), and the eksir errors of DescribeCluster, STS and the access review.
    """
    if kube.source().kind is not SourceKind.EKS_TOKEN or not kube.cluster_name:
        return None
    gap = access_gap(kube())
    if gap is None:
        return None
    if _granted(case) is not None:
        raise PermissionDeniedError(
            f"break-glass access was granted in this case, yet {gap}: bind the group {RESPONDER_GROUP} to "
            "the ClusterRole `eksir permissions` prints (a ClusterRoleBinding), then run again"
        )
    cluster = describe_cluster(aws("eks"), kube.cluster_name)
    mode = "access-entry" if uses_access_entries(cluster) else "aws-auth"
    admin = str(admin_kubeconfig) if admin_kubeconfig else None
    step = grant_step(cluster.name, responder_principal(aws), mode, admin, gap)
    return break_glass_plan(finding, case.load().id, step, datetime.now(UTC))


def _granted(case: CaseHandle) -> PlanStep | None:
    """The case's break-glass step when its current run state says it was applied."""
    try:
        state = StateStore(case).load()
    except NotFoundError:
        return None
    record = state.steps.get(STEP_ID)
    step = next((s for s in state.plan.steps if s.id == STEP_ID), None)
    return step if step is not None and record is not None and record.status in _GRANTED else None


def carry_grant(plan: Plan, case: CaseHandle) -> Plan:
    """The plan with the case's applied break-glass step first, so it stays on record and is rolled back."""
    step = _granted(case)
    return plan if step is None else with_grant(plan, step)


def refuse_close_while_granted(case: CaseHandle) -> None:
    """A case does not close while its break-glass access is still in place: the grant ends with the case.

    Raises RefusedError (exit 12) naming the rollback that removes it (recorded on the case like any other).
    """
    if _granted(case) is not None:
        raise RefusedError(
            "break-glass access granted by this case is still in place: close with --revoke-break-glass, "
            f"or remove it first with `eksir rollback {case.path.name} --step {STEP_ID} --yes`"
        )


def revoke_break_glass(case: CaseHandle) -> bool:
    """Roll back the case's break-glass grant (engine rollback: recorded and verified like any other).

    AWS credentials and region come from the environment and the case (the grant's own parameters name the
    cluster and, for aws-auth, the admin kubeconfig). Returns False when there was nothing to revoke; raises
    StepFailedError when the grant could not be removed (the case then stays open).
    """
    if _granted(case) is None:
        return False
    header = case.load()
    aws = AwsClients(region=header.region)
    kube = KubeProvider(aws=aws, cluster_name=header.cluster_name)
    state = rollback(case, ContextFactory(header.id, aws, kube), STEP_ID)
    record = state.steps[STEP_ID]
    if record.status is not StepStatus.ROLLED_BACK:
        raise StepFailedError(
            f"break-glass access could not be removed ({record.detail}); the case stays open"
        )
    return True
