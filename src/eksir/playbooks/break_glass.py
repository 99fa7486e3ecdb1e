"""The break-glass plan: one step giving the responder access when its AWS identity has none in the cluster.

Why a plan of its own: without Kubernetes access nothing can be resolved (pod, node, bindings), so the full
response plan cannot be built yet. `eksir plan` shows this step and `eksir respond` runs it (approval needed);
the next `eksir respond` resolves with the access it gave and carries the step into the full plan, so the
grant stays on the case's record and is rolled back with it.
"""

from __future__ import annotations

from datetime import datetime

from eksir.actions.base import Phase
from eksir.models.finding import Finding
from eksir.playbooks.plan import Plan, PlanNote, PlanStep

STEP_ID = "break-glass-access"
ACTION_ID = "eks.grant_responder_access"


def grant_step(
    cluster: str, principal_arn: str, mode: str, admin_kubeconfig: str | None, reason: str
) -> PlanStep:
    """The grant step (access entry or aws-auth mapping, by the cluster's authentication mode)."""
    params: dict[str, object] = {"cluster_name": cluster, "principal_arn": principal_arn, "mode": mode}
    if admin_kubeconfig and mode == "aws-auth":
        params["admin_kubeconfig"] = admin_kubeconfig
    return PlanStep(
        id=STEP_ID,
        action_id=ACTION_ID,
        params=params,
        requires_approval=True,
        phase=Phase.CONTAINMENT,
        rationale=f"the responder cannot work in the cluster: {reason}",
        approval_reasons=("changes who may access the cluster (break-glass)",),
    )


def break_glass_plan(finding: Finding, case_id: str, step: PlanStep, now: datetime) -> Plan:
    """A plan holding only the grant step, with a note saying what comes after it."""
    note = PlanNote(
        subject="break-glass",
        message="resolution needs Kubernetes access: approve this step with `eksir respond`, then run "
        "`eksir respond` again to resolve the finding and plan the response",
    )
    return Plan(
        playbook="break-glass",
        case_id=case_id,
        finding_id=finding.id,
        cluster_name=str(step.params["cluster_name"]),
        created_at=now,
        steps=(step,),
        notes=(note,),
    )


def with_grant(plan: Plan, step: PlanStep) -> Plan:
    """The full plan with the grant step first (already applied: the runner records it, changes nothing)."""
    if any(s.id == STEP_ID for s in plan.steps):
        return plan
    return plan.model_copy(update={"steps": (step, *plan.steps)})
