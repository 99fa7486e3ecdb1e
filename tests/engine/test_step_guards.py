"""The two holds on a step beyond its dependencies (engine/guards.py), against real ConfigMaps.

- A step a blocking outage item names ends `blocked` with the item as its reason and changes nothing, until a
  run carries `--override-outage REASON`; the override is recorded (approver, reason) in the step and the log.
- A step whose evidence dependency failed (node isolation after a failed capture) is not silently blocked: the
  gate is asked the fallback's own approval id, showing the trade-off; approved, the step runs without it
  (recorded); declined, it ends `blocked` naming the open risk; `resume` asks again.
"""

from __future__ import annotations

import io

import pytest
from kubernetes.client import ApiClient, CoreV1Api
from rich.console import Console

from eksir.cli.respond_view import render_state
from eksir.engine import InteractiveGate, Runner, StepListGate, StepStatus
from eksir.engine.guards import FALLBACK_DECLINED, OUTAGE_BLOCKED, OutageOverride, outage_blocked
from eksir.playbooks.fallbacks import offer_isolation_without_evidence
from eksir.playbooks.plan import Fallback, PlanStep
from eksir.store import CaseHandle
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step

pytestmark = pytest.mark.lab

ITEM = "pod shop/web-1: the only ready replica of Deployment shop/web (ready 1 of 1)"
FALLBACK = Fallback(
    approval_id="isolate:without-evidence",
    without=("capture",),
    title="isolate now without volatile evidence",
    trade_off="the node is cut off now; processes and connections are not collected",
    declined_risk="the node stays on the network: an open risk",
)


def _value(core: CoreV1Api, target: tuple[str, str], key: str) -> str | None:
    data = core.read_namespaced_config_map(target[1], target[0]).data or {}
    return data.get(key)


def _outage_plan(target: tuple[str, str]) -> tuple[PlanStep, PlanStep]:
    isolate = mark_step("isolate", target, "isolate", destructive=True).model_copy(
        update={"outage_blocks": (ITEM,)}
    )
    after = mark_step("after", target, "after", depends_on=("isolate",))
    return isolate, after


def test_an_outage_blocked_step_changes_nothing_and_says_why_and_how_to_override(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    gate = StepListGate(frozenset({"isolate"}), "alice@laptop")  # approved, yet the outage check holds it
    state = Runner(case, make_plan(*_outage_plan(configmap)), ctx_factory_for(k8s_admin), gate).run()
    record = state.steps["isolate"]
    assert record.status is StepStatus.BLOCKED
    assert record.error_kind == OUTAGE_BLOCKED
    assert ITEM in record.detail
    assert "--override-outage REASON" in record.detail
    assert state.steps["after"].status is StepStatus.BLOCKED
    assert outage_blocked(state) == ["isolate"]
    assert _value(core, configmap, "isolate") is None


def test_an_outage_override_runs_the_step_and_records_who_accepted_the_outage_and_why(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(*_outage_plan(configmap))
    gate = StepListGate(frozenset({"isolate"}), "alice@laptop")
    assert Runner(case, plan, ctx_factory_for(k8s_admin), gate).run().steps["isolate"].status is (
        StepStatus.BLOCKED
    )
    override = OutageOverride(
        reason="web is drained behind the LB; accepted by the app owner", approver="bob"
    )
    state = Runner(case, plan, ctx_factory_for(k8s_admin), gate, outage_override=override).run(True)
    record = state.steps["isolate"]
    assert record.status is StepStatus.VERIFIED
    assert record.outage_override is not None
    assert record.outage_override.approver == "bob"
    assert record.outage_override.reason.startswith("web is drained")
    assert state.steps["after"].status is StepStatus.VERIFIED
    assert _value(core, configmap, "isolate") == "set-by-isolate"
    logged = [e for e in case.log.events() if e.type == "step.outage-overridden"]
    assert [(e.data["step_id"], e.data["approver"], e.data["items"]) for e in logged] == [
        ("isolate", "bob", [ITEM])
    ]


def _capture_plan(target: tuple[str, str]) -> tuple[PlanStep, PlanStep, PlanStep]:
    capture = mark_step("capture", target, "capture", temporary_failures=99)  # fails past the retries
    snapshot = mark_step("snapshot", target, "snapshot")
    isolate = mark_step("isolate", target, "isolate", depends_on=("capture", "snapshot"), destructive=True)
    return capture, snapshot, isolate.model_copy(update={"fallback": FALLBACK})


def test_a_failed_capture_asks_the_fallback_approval_and_approved_the_step_runs_without_it(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    gate = StepListGate(frozenset({"isolate:without-evidence"}), "alice@laptop")
    plan = make_plan(*_capture_plan(configmap))
    state = Runner(case, plan, ctx_factory_for(k8s_admin), gate, retry=FAST_RETRY).run()
    assert state.steps["capture"].status is StepStatus.FAILED
    record = state.steps["isolate"]
    assert record.status is StepStatus.VERIFIED
    assert record.fallback_approval is not None
    assert record.fallback_approval.approved
    assert record.approval is not None
    assert record.approval.how.startswith("isolate:without-evidence")
    assert _value(core, configmap, "isolate") == "set-by-isolate"
    asked = [e.data for e in case.log.events() if e.type == "step.fallback"]
    assert [(d["approval_id"], d["without"], d["approval"]["approved"]) for d in asked] == [
        ("isolate:without-evidence", ["capture"], True)
    ]


def test_approving_the_isolation_itself_does_not_approve_isolating_without_evidence(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    gate = StepListGate(frozenset({"isolate"}), "alice@laptop")
    plan = make_plan(*_capture_plan(configmap))
    state = Runner(case, plan, ctx_factory_for(k8s_admin), gate, retry=FAST_RETRY).run()
    record = state.steps["isolate"]
    assert record.status is StepStatus.BLOCKED
    assert record.error_kind == FALLBACK_DECLINED
    assert "capture is failed" in record.detail
    assert "isolate now without volatile evidence (isolate:without-evidence) not approved" in record.detail
    assert record.detail.endswith("the node stays on the network: an open risk")
    assert _value(core, configmap, "isolate") is None
    shown = io.StringIO()
    render_state(Console(file=shown, width=1000), state, "status")
    assert "if isolate:without-evidence is approved: the node is cut off now" in shown.getvalue()

    again = StepListGate(frozenset({"isolate:without-evidence"}), "carol@laptop")
    resumed = Runner(case, plan, ctx_factory_for(k8s_admin), again, retry=FAST_RETRY).run(True)
    assert resumed.steps["isolate"].status is StepStatus.VERIFIED
    assert resumed.steps["isolate"].approver == "carol@laptop"


def test_the_interactive_prompt_names_the_fallback_and_states_the_trade_off(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    out, prompts = io.StringIO(), []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "n"

    gate = InteractiveGate("alice@laptop", Console(file=out, width=300), ask=ask)
    state = Runner(case, make_plan(*_capture_plan(configmap)), ctx_factory_for(k8s_admin), gate).run()
    assert prompts == [
        "Apply isolate:without-evidence? [y]es [n]o [d]etails [a]ll remaining [q]uit (default n): "
    ]
    shown = out.getvalue()
    assert (
        "isolate now without volatile evidence: the node is cut off now; processes and connections" in shown
    )
    assert "capture is failed: isolate now without volatile evidence?" in shown
    assert state.steps["isolate"].status is StepStatus.BLOCKED


def test_a_failed_dependency_the_fallback_does_not_name_blocks_the_step_without_asking(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    capture, snapshot, isolate = _capture_plan(configmap)
    failing_snapshot = snapshot.model_copy(update={"params": {**snapshot.params, "temporary_failures": 99}})
    state = Runner(
        case,
        make_plan(capture, failing_snapshot, isolate),
        ctx_factory_for(k8s_admin),
        StepListGate(frozenset({"isolate:without-evidence"}), "alice@laptop"),
        retry=FAST_RETRY,
    ).run()
    record = state.steps["isolate"]  # a dependency the fallback does not name failed: plainly blocked
    assert record.status is StepStatus.BLOCKED
    assert record.fallback_approval is None
    assert "snapshot is failed" in record.detail
    assert not [e for e in case.log.events() if e.type == "step.fallback"]


def test_the_playbook_offers_isolation_without_evidence_only_where_isolation_waits_for_a_capture() -> None:
    from eksir.actions.base import Phase

    def step(step_id: str, action: str, *deps: str) -> PlanStep:
        return PlanStep(id=step_id, action_id=action, depends_on=deps, phase=Phase.CONTAINMENT)

    steps = offer_isolation_without_evidence(
        [
            step("s01-ssm.capture_volatile", "ssm.capture_volatile"),
            step("s02-ec2.snapshot_volumes", "ec2.snapshot_volumes"),
            step(
                "s16-ec2.isolate_instance",
                "ec2.isolate_instance",
                "s01-ssm.capture_volatile",
                "s02-ec2.snapshot_volumes",
            ),
        ]
    )
    fallback = steps[2].fallback
    assert fallback is not None
    assert fallback.approval_id == "s16-ec2.isolate_instance:without-evidence"
    assert fallback.without == ("s01-ssm.capture_volatile",)
    assert "--approve-step s16-ec2.isolate_instance:without-evidence" in fallback.declined_risk
    bare = offer_isolation_without_evidence([step("s16-ec2.isolate_instance", "ec2.isolate_instance")])
    assert bare[0].fallback is None
    assert "fallback" not in bare[0].model_dump(mode="json")  # older plans keep their digest
