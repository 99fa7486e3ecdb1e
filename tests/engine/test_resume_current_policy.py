"""Issue 12 item 7: on resume the current approval policy governs. A step approved before a crash (or caught
halfway through its apply) is not applied by `resume --approve none`; it is asked again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.engine import ApprovalPolicy, DenyAllGate, PolicyGate, Runner, StateStore, StepStatus
from eksir.engine.state import Approval
from eksir.playbooks.plan import Plan
from eksir.store import CaseHandle
from tests.engine import cm_actions
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step

pytestmark = pytest.mark.lab
DAY_SHIFT = Approval(approved=True, approver="day@soc", at=datetime(2026, 1, 1, tzinfo=UTC), how="policy:all")


def _crashed_at(case: CaseHandle, plan: Plan, step_id: str, status: StepStatus) -> None:
    """Persist the record exactly as the runner does just before it dies: approved, or applying."""
    store = StateStore(case)
    state = store.record_plan(plan, case.load().id)
    record = state.steps[step_id]
    store.transition(state, record.model_copy(update={"status": StepStatus.APPROVED, "approval": DAY_SHIFT}))
    if status is StepStatus.APPLYING:
        record = state.steps[step_id]
        store.transition(state, record.model_copy(update={"status": StepStatus.APPLYING, "apply_calls": 1}))


@pytest.mark.parametrize("crashed", [StepStatus.APPROVED, StepStatus.APPLYING])
def test_resume_with_approve_none_applies_nothing_an_earlier_run_approved(
    crashed: StepStatus, case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", destructive=True))
    _crashed_at(case, plan, "s1", crashed)

    state = Runner(case, plan, ctx_factory_for(k8s_admin), DenyAllGate("night@soc"), retry=FAST_RETRY).run(
        retry_unfinished=True
    )

    assert cm_actions.mutations(core, *configmap, "a") == 0
    assert state.steps["s1"].status is StepStatus.SKIPPED
    assert state.steps["s1"].approval is not None
    assert state.steps["s1"].approval.approver == "night@soc"


def test_resume_with_non_destructive_policy_does_not_apply_a_destructive_step_approved_before_a_crash(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", destructive=True), mark_step("s2", configmap, "b"))
    _crashed_at(case, plan, "s1", StepStatus.APPROVED)
    cautious = PolicyGate(ApprovalPolicy.NON_DESTRUCTIVE, "night@soc")

    state = Runner(case, plan, ctx_factory_for(k8s_admin), cautious, retry=FAST_RETRY).run(
        retry_unfinished=True
    )

    assert cm_actions.mutations(core, *configmap, "a") == 0
    assert cm_actions.mutations(core, *configmap, "b") == 1
    assert (state.steps["s1"].status, state.steps["s2"].status) == (StepStatus.SKIPPED, StepStatus.VERIFIED)


def test_resume_applies_a_step_caught_halfway_once_the_current_policy_approves_it(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", destructive=True))
    _crashed_at(case, plan, "s1", StepStatus.APPLYING)
    everything = PolicyGate(ApprovalPolicy.ALL, "night@soc")

    state = Runner(case, plan, ctx_factory_for(k8s_admin), everything, retry=FAST_RETRY).run(
        retry_unfinished=True
    )

    assert cm_actions.mutations(core, *configmap, "a") == 1
    assert state.steps["s1"].status is StepStatus.VERIFIED
    assert state.steps["s1"].resumed
    assert state.steps["s1"].approval is not None
    assert state.steps["s1"].approval.approver == "night@soc"
