"""A forged finding file (GuardDuty, via Stubber, knows a different finding) runs evidence steps but no
destructive step, on the record; `--trust-finding-file` is recorded and lets them run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.cli.finding_trust import gate_for_finding, refusal
from eksir.engine import ApprovalPolicy, PolicyGate, Runner, StepStatus
from eksir.errors import ExitCode, RefusedError
from eksir.store import CaseHandle
from tests.engine import cm_actions
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step
from tests.resolve.test_finding_check import _file, _genuine, _stubbed

pytestmark = pytest.mark.lab
ALL = PolicyGate(ApprovalPolicy.ALL, "tester@lab")


def _forged() -> Any:
    forged = copy.deepcopy(_genuine())
    forged["Resource"]["KubernetesDetails"]["KubernetesUserDetails"]["Username"] = "legitimate-admin"
    return _file(forged)


def _run(case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str], gate: Any) -> Any:
    plan = make_plan(
        mark_step("evidence", configmap, "e"),
        mark_step("contain", configmap, "c", destructive=True),
    )
    return Runner(case, plan, ctx_factory_for(k8s_admin), gate, retry=FAST_RETRY).run()


def test_a_forged_finding_file_blocks_destructive_steps_and_the_run_is_refused_with_exit_12(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    client_for, _, _ = _stubbed({"Findings": [_genuine()]})
    gate, check = gate_for_finding(case, _forged(), ALL, client_for, trust=False)

    state = _run(case, k8s_admin, configmap, gate)

    assert state.steps["evidence"].status is StepStatus.VERIFIED
    assert state.steps["contain"].status is StepStatus.SKIPPED
    assert "GuardDuty" in state.steps["contain"].detail
    assert cm_actions.mutations(core, *configmap, "c") == 0
    recorded = next(e for e in case.log.events() if e.type == "finding.unconfirmed")
    assert "actor username differs from the file's" in recorded.data["differences"]
    message = refusal(check)
    assert message is not None
    assert RefusedError(message).exit_code is ExitCode.REFUSED


def test_trusting_the_finding_file_is_recorded_and_lets_destructive_steps_run(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    gate, check = gate_for_finding(case, _forged(), ALL, lambda _region: None, trust=True)

    state = _run(case, k8s_admin, configmap, gate)

    assert check is None
    assert refusal(check) is None
    assert state.steps["contain"].status is StepStatus.VERIFIED
    assert cm_actions.mutations(core, *configmap, "c") == 1
    assert [e.data["reason"] for e in case.log.events() if e.type == "finding.trusted-as-given"] == [
        "--trust-finding-file"
    ]


def test_resuming_a_case_whose_finding_was_not_confirmed_keeps_destructive_steps_blocked(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    from eksir.cli.finding_trust import recorded_gate

    client_for, _, _ = _stubbed({"Findings": []})
    gate, _ = gate_for_finding(case, _forged(), ALL, client_for, trust=False)
    _run(case, k8s_admin, configmap, gate)

    resumed_gate, message = recorded_gate(case, ALL, trust=False)
    plan = make_plan(
        mark_step("evidence", configmap, "e"), mark_step("contain", configmap, "c", destructive=True)
    )
    state = Runner(case, plan, ctx_factory_for(k8s_admin), resumed_gate, retry=FAST_RETRY).run(
        retry_unfinished=True
    )

    assert message is not None
    assert "not confirmed by GuardDuty" in message
    assert state.steps["contain"].status is StepStatus.SKIPPED
    assert cm_actions.mutations(core, *configmap, "c") == 0
    trusted_gate, none = recorded_gate(case, ALL, trust=True)
    assert none is None
    assert trusted_gate is ALL
    assert [e.type for e in case.log.events()][-1] == "finding.trusted-as-given"
