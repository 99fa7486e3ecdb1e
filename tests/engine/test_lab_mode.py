"""Lab mode in the Runner: a step the lab cannot perform is `unavailable-in-lab`, never failed or verified.

The fault is real: the step's identity has no RBAC grant in the namespace it writes to, so the API server
answers 403. Lab mode is an explicit argument; without it the same fault stays a failure that blocks the
step's dependents, as in production.
"""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.engine import ApprovalPolicy, LabMode, PolicyGate, Runner, RunState, StateStore, StepStatus
from eksir.lab.controlplane import ControlPlane, create_namespace
from eksir.playbooks.plan import Plan
from eksir.store import CaseHandle, verify_case
from tests.engine import cm_actions
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step

pytestmark = pytest.mark.lab
ALL = PolicyGate(ApprovalPolicy.ALL, "tester@lab")
LAB = LabMode({"test.mark_configmap_destructive": "the lab cannot write there (test)"})
USER = "lab-mode-responder"


@pytest.fixture
def namespaces(k8s_admin: ApiClient, core: CoreV1Api, k8s_namespace: str) -> tuple[str, str]:
    """(allowed, forbidden): the limited identity may patch ConfigMaps in the first only."""
    forbidden = f"{k8s_namespace}-x"
    create_namespace(k8s_admin, forbidden)
    cm_actions.make_configmap(core, k8s_namespace, "ok")
    cm_actions.make_configmap(core, forbidden, "nope")
    cm_actions.grant_configmaps(k8s_admin, k8s_namespace, USER)
    return k8s_namespace, forbidden


def _plan(allowed: str, forbidden: str) -> Plan:
    return make_plan(
        mark_step("capture", (forbidden, "nope"), "a", destructive=True),
        mark_step("isolate", (allowed, "ok"), "b", depends_on=("capture",)),
        mark_step("other", (forbidden, "nope"), "c"),
    )


def _run(case: CaseHandle, plan: Plan, api: ApiClient, lab_mode: LabMode | None) -> RunState:
    runner = Runner(case, plan, ctx_factory_for(api), ALL, retry=FAST_RETRY, lab_mode=lab_mode)
    return runner.run()


def test_in_lab_mode_a_listed_step_that_fails_is_unavailable_in_lab_with_its_reason_and_the_attempt(
    case: CaseHandle, control_plane: ControlPlane, namespaces: tuple[str, str]
) -> None:
    state = _run(case, _plan(*namespaces), control_plane.identity_api_client(USER), LAB)
    record = state.steps["capture"]
    assert record.status is StepStatus.UNAVAILABLE_IN_LAB
    assert record.lab_reason == "the lab cannot write there (test)"
    assert record.detail.startswith("unavailable-in-lab: the lab cannot write there (test)")
    assert "forbidden" in record.detail.lower()
    assert StateStore(case).load().steps["capture"].status is StepStatus.UNAVAILABLE_IN_LAB
    assert verify_case(case).ok


def test_in_lab_mode_a_step_waiting_on_an_unavailable_one_runs_and_its_record_says_it_ran_without_it(
    case: CaseHandle, control_plane: ControlPlane, core: CoreV1Api, namespaces: tuple[str, str]
) -> None:
    allowed, _ = namespaces
    state = _run(case, _plan(*namespaces), control_plane.identity_api_client(USER), LAB)
    record = state.steps["isolate"]
    assert record.status is StepStatus.VERIFIED
    assert record.ran_without == {"capture": "the lab cannot write there (test)"}
    assert core.read_namespaced_config_map("ok", allowed).data["b"] == "set-by-isolate"
    notes = [e.data["detail"] for e in case.log.events() if e.type == "step.ran-without"]
    assert notes == [
        "ran without capture (the lab cannot write there (test)): that step is unavailable in the lab"
    ]


def test_in_lab_mode_a_step_the_lab_is_expected_to_perform_still_fails(
    case: CaseHandle, control_plane: ControlPlane, namespaces: tuple[str, str]
) -> None:
    state = _run(case, _plan(*namespaces), control_plane.identity_api_client(USER), LAB)
    assert state.steps["other"].status is StepStatus.FAILED
    assert state.steps["other"].error_kind == "permission-denied"


def test_in_lab_mode_a_listed_step_the_lab_can_perform_is_verified(
    case: CaseHandle, k8s_admin: ApiClient, namespaces: tuple[str, str]
) -> None:
    state = _run(case, _plan(*namespaces), k8s_admin, LAB)
    assert state.steps["capture"].status is StepStatus.VERIFIED
    assert state.steps["capture"].lab_reason is None
    assert state.steps["isolate"].ran_without == {}


def test_without_lab_mode_the_same_fault_fails_the_step_and_blocks_its_dependent(
    case: CaseHandle, control_plane: ControlPlane, core: CoreV1Api, namespaces: tuple[str, str]
) -> None:
    allowed, _ = namespaces
    state = _run(case, _plan(*namespaces), control_plane.identity_api_client(USER), None)
    assert state.steps["capture"].status is StepStatus.FAILED
    assert state.steps["isolate"].status is StepStatus.BLOCKED
    assert "b" not in (core.read_namespaced_config_map("ok", allowed).data or {})


def test_resumed_outside_the_lab_a_step_left_unavailable_is_attempted_again_and_fails(
    case: CaseHandle, control_plane: ControlPlane, namespaces: tuple[str, str]
) -> None:
    limited, plan = control_plane.identity_api_client(USER), _plan(*namespaces)
    _run(case, plan, limited, LAB)
    runner = Runner(case, plan, ctx_factory_for(limited), ALL, retry=FAST_RETRY)
    state = runner.run(retry_unfinished=True)
    assert state.steps["capture"].status is StepStatus.FAILED
    assert state.steps["capture"].error_kind == "permission-denied"
    assert state.steps["isolate"].status is StepStatus.VERIFIED
