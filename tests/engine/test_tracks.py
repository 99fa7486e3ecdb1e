"""Post-incident steps run through the one engine on accumulating tracks (real ConfigMaps in the lab's
kube-apiserver): each command adds its steps to what is in effect, nothing is applied twice, a declined
or failed step is asked again, a step in effect cannot be silently re-planned, and rollback works per track.
"""

from __future__ import annotations

import pytest

from eksir.engine import ApprovalPolicy, DenyAllGate, PolicyGate, StateStore, StepStatus, rollback
from eksir.engine.steps import run_steps
from eksir.engine.tracks import CLOSEOUT, PREVENTION, RESPONSE
from eksir.errors import NotFoundError, RefusedError
from tests.engine import cm_actions
from tests.engine.conftest import ctx_factory_for, mark_step

pytestmark = pytest.mark.lab
APPROVE = PolicyGate(ApprovalPolicy.ALL, "lead@soc")


def test_a_second_command_adds_its_step_and_keeps_the_first_in_effect(case, k8s_admin, core, configmap):
    ctx = ctx_factory_for(k8s_admin, case.load().id)
    [first] = run_steps(case, PREVENTION, [mark_step("psa", configmap, "a")], ctx, APPROVE)
    [second] = run_steps(case, PREVENTION, [mark_step("filter", configmap, "b")], ctx, APPROVE)
    assert (first.status, second.status) == (StepStatus.VERIFIED, StepStatus.VERIFIED)
    state = StateStore(case, PREVENTION).load()
    assert [s.id for s in state.plan.steps] == ["psa", "filter"]
    assert state.steps["psa"].status is StepStatus.VERIFIED
    assert (case.path / PREVENTION.state_file).is_file()
    assert not (case.path / RESPONSE.state_file).exists()  # the response track is untouched

    # asked again by name: already verified, not applied a second time
    run_steps(case, PREVENTION, [mark_step("psa", configmap, "a")], ctx, APPROVE)
    assert cm_actions.mutations(core, *configmap, "a") == 1


def test_a_declined_step_raises_changes_nothing_and_is_asked_again_next_time(
    case, k8s_admin, core, configmap
):
    ctx = ctx_factory_for(k8s_admin, case.load().id)
    with pytest.raises(RefusedError, match="not approved"):
        run_steps(case, CLOSEOUT, [mark_step("share", configmap, "s", destructive=True)], ctx, DenyAllGate())
    assert cm_actions.mutations(core, *configmap, "s") == 0
    [done] = run_steps(case, CLOSEOUT, [mark_step("share", configmap, "s", destructive=True)], ctx, APPROVE)
    assert done.status is StepStatus.VERIFIED
    assert done.approver == "lead@soc"


def test_a_step_in_effect_cannot_be_replanned_with_other_parameters(case, k8s_admin, configmap):
    ctx = ctx_factory_for(k8s_admin, case.load().id)
    run_steps(case, PREVENTION, [mark_step("psa", configmap, "a")], ctx, APPROVE)
    with pytest.raises(RefusedError, match="in effect with other parameters"):
        run_steps(case, PREVENTION, [mark_step("psa", configmap, "other-key")], ctx, APPROVE)
    # once rolled back on its track, the new parameters are accepted
    rollback(case, ctx, "psa", track=PREVENTION)
    [again] = run_steps(case, PREVENTION, [mark_step("psa", configmap, "other-key")], ctx, APPROVE)
    assert again.status is StepStatus.VERIFIED


def test_a_chain_stops_at_the_first_failure_and_raises_it(case, k8s_admin, core, configmap):
    ctx = ctx_factory_for(k8s_admin, case.load().id)
    missing = ("default", "no-such-configmap")
    steps = [mark_step("one", missing, "x"), mark_step("two", configmap, "y", depends_on=("one",))]
    with pytest.raises(NotFoundError, match="one: failed"):  # the failure keeps its kind (exit 10)
        run_steps(case, CLOSEOUT, steps, ctx, APPROVE)
    state = StateStore(case, CLOSEOUT).load()
    assert state.steps["one"].status is StepStatus.FAILED
    assert state.steps["two"].status is StepStatus.BLOCKED
    assert cm_actions.mutations(core, *configmap, "y") == 0
