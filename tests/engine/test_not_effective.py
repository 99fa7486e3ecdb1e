"""A step whose change is in place but contains nothing ends `not-effective`: final, never green, a met
dependency (what depends on it still runs), rolled back like any change, and final for `eksir case close`."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.cli.gameday_summary import engine_steps, problems
from eksir.engine import ApprovalPolicy, PolicyGate, Runner, StepStatus
from eksir.engine.rollback import rollback
from eksir.engine.state import TERMINAL, dependency_met
from eksir.phases.case_close import unfinished
from eksir.store import CaseHandle
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step

pytestmark = pytest.mark.lab


def test_an_ineffective_step_is_recorded_with_its_reason_and_its_dependents_still_run(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    pod = mark_step("pod", configmap, "pod").model_copy(
        update={"action_id": "test.mark_configmap_ineffective"}
    )
    node = mark_step("node", configmap, "node", depends_on=("pod",))
    gate = PolicyGate(ApprovalPolicy.ALL, "tester@lab")
    state = Runner(case, make_plan(pod, node), ctx_factory_for(k8s_admin), gate, retry=FAST_RETRY).run()
    record = state.steps["pod"]
    assert record.status is StepStatus.NOT_EFFECTIVE
    assert record.detail == "applied but not effective: nothing enforces this mark"
    assert state.steps["node"].status is StepStatus.VERIFIED
    assert StepStatus.NOT_EFFECTIVE in TERMINAL
    assert dependency_met(StepStatus.NOT_EFFECTIVE, lab_mode=False)
    assert not problems(engine_steps(state))  # neither failed nor blocked in a game day
    assert unfinished({"pod": "not-effective"}) == {}  # case close treats it as final
    assert core.read_namespaced_config_map(configmap[1], configmap[0]).data["pod"] == "set-by-pod"

    undone = rollback(case, ctx_factory_for(k8s_admin), retry=FAST_RETRY)
    assert undone.steps["pod"].status is StepStatus.ROLLED_BACK
    assert "pod" not in (core.read_namespaced_config_map(configmap[1], configmap[0]).data or {})
