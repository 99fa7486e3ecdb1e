"""Where the playbook puts node isolation's follow-ups: tighten and metadata after the verified capture,
strict from the start on request, the subnet NACL only when asked for; params validate against each action."""

from __future__ import annotations

from eksir.actions.registry import get_action
from eksir.playbooks.plan import Plan, PlanStep
from tests.actions.test_playbook_params import _plan

NODE_ACTIONS = (
    "ec2.isolate_instance",
    "ec2.tighten_isolation",
    "ec2.disable_metadata",
    "ec2.deny_subnet_nacl",
)


def _by_action(plan: Plan) -> dict[str, PlanStep]:
    return {s.action_id: s for s in plan.steps}


def test_by_default_isolation_keeps_the_ssm_endpoints_until_capture_then_tightens_and_disables_metadata() -> (
    None
):
    steps = _by_action(_plan())
    isolate, tighten, metadata = (steps[a] for a in NODE_ACTIONS[:3])
    capture, pause = steps["ssm.capture_volatile"], steps["ssm.pause_container"]
    assert isolate.params["keep_ssm_egress"] is True
    assert {isolate.id, capture.id, pause.id} <= set(tighten.depends_on)
    assert {tighten.id, capture.id} <= set(metadata.depends_on)
    assert "ec2.deny_subnet_nacl" not in steps
    for step in (isolate, tighten, metadata):
        assert step.requires_approval
        get_action(step.action_id).params_type.model_validate(step.params)


def test_strict_isolation_starts_with_no_egress_and_needs_no_tightening() -> None:
    steps = _by_action(_plan(strict_isolation=True))
    assert steps["ec2.isolate_instance"].params["keep_ssm_egress"] is False
    assert "ec2.tighten_isolation" not in steps
    assert steps["ec2.isolate_instance"].id in steps["ec2.disable_metadata"].depends_on


def test_without_a_capture_egress_and_metadata_stay_for_collection_and_the_plan_says_so() -> None:
    plan = _plan(evidence_bucket=None, pause_container=False)
    steps = _by_action(plan)
    assert steps["ec2.isolate_instance"].params["keep_ssm_egress"] is True
    assert "ec2.tighten_isolation" not in steps
    assert "ec2.disable_metadata" not in steps
    assert any("--strict-isolation" in n.message for n in plan.notes)


def test_the_subnet_nacl_comes_only_when_asked_for_and_after_the_node_is_isolated() -> None:
    steps = _by_action(_plan(isolate_subnet=True))
    nacl = steps["ec2.deny_subnet_nacl"]
    assert steps["ec2.tighten_isolation"].id in nacl.depends_on
    assert nacl.requires_approval
    get_action(nacl.action_id).params_type.model_validate(nacl.params)
