"""Resume after a SIGKILL between apply and its record, resume of skipped steps, and rollback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.engine import ApprovalPolicy, PolicyGate, Runner, StateStore, StepStatus, rollback
from eksir.errors import RefusedError
from eksir.lab.controlplane import ControlPlane
from eksir.store import CaseHandle, verify_case
from tests.engine import cm_actions
from tests.engine.conftest import FAST_RETRY, ctx_factory_for, make_plan, mark_step

pytestmark = pytest.mark.lab
ALL = PolicyGate(ApprovalPolicy.ALL, "tester@lab")
REPO = Path(__file__).resolve().parents[2]


def _data(core: CoreV1Api, target: tuple[str, str]) -> dict[str, str]:
    return dict(core.read_namespaced_config_map(target[1], target[0]).data or {})


def test_a_runner_killed_between_apply_and_its_record_resumes_without_applying_any_step_twice(
    case: CaseHandle,
    control_plane: ControlPlane,
    k8s_admin: ApiClient,
    core: CoreV1Api,
    configmap: tuple[str, str],
    tmp_path: Path,
) -> None:
    marker = tmp_path / "applied.marker"
    plan = make_plan(
        mark_step("s1", configmap, "a"),
        mark_step("s2", configmap, "b", depends_on=("s1",), hang_marker=str(marker)),
        mark_step("s3", configmap, "c", depends_on=("s2",)),
    )
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.child_runner", str(case.path), str(plan_file),
         str(control_plane.admin_kubeconfig)],
        cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child runner exited before reaching the marker"
            assert time.monotonic() < deadline, "the child runner never reached the marker"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    killed = StateStore(case).load()
    assert killed.steps["s1"].status is StepStatus.VERIFIED
    assert killed.steps["s2"].status is StepStatus.APPLYING
    assert killed.steps["s3"].status is StepStatus.PENDING

    resumed_plan = make_plan(
        mark_step("s1", configmap, "a"),
        mark_step("s2", configmap, "b", depends_on=("s1",), hang_marker=str(marker)),
        mark_step("s3", configmap, "c", depends_on=("s2",)),
    )
    marker.unlink()
    state = Runner(case, resumed_plan, ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY).run()

    assert {r.status for r in state.steps.values()} == {StepStatus.VERIFIED}
    assert [cm_actions.mutations(core, *configmap, k) for k in "abc"] == [1, 1, 1]
    assert not marker.exists(), "the resumed apply was a no-op: it made no change and did not hang"
    assert state.steps["s1"].apply_calls == 1
    assert state.steps["s2"].resumed
    assert state.steps["s2"].applied == {"before": None}
    decisions = [e.data["decision"] for e in case.log.events() if e.type == "step.resume-decision"]
    assert decisions == ["already applied: re-apply is a no-op"]
    assert verify_case(case).ok


def test_resume_asks_again_for_steps_that_were_skipped_and_applies_them_once_approved(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", destructive=True), mark_step("s2", configmap, "b"))
    cautious = PolicyGate(ApprovalPolicy.NON_DESTRUCTIVE, "night@lab")
    first = Runner(case, plan, ctx_factory_for(k8s_admin), cautious, retry=FAST_RETRY).run()
    assert first.steps["s1"].status is StepStatus.SKIPPED
    second = Runner(case, plan, ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY).run(retry_unfinished=True)
    assert second.steps["s1"].status is StepStatus.VERIFIED
    assert second.steps["s2"].apply_calls == 1
    assert _data(core, configmap)["a"] == "set-by-s1"


def test_a_different_plan_is_refused_while_the_earlier_plan_has_changes_in_place(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    Runner(case, make_plan(mark_step("s1", configmap, "a")), ctx_factory_for(k8s_admin), ALL).run()
    with pytest.raises(RefusedError, match="resume"):
        Runner(case, make_plan(mark_step("s9", configmap, "z")), ctx_factory_for(k8s_admin), ALL)


def test_rollback_restores_every_change_newest_first_and_verifies_each(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    core.patch_namespaced_config_map(configmap[1], configmap[0], {"data": {"a": "original"}})
    plan = make_plan(mark_step("s1", configmap, "a"), mark_step("s2", configmap, "b", depends_on=("s1",)))
    Runner(case, plan, ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY).run()
    state = rollback(case, ctx_factory_for(k8s_admin), retry=FAST_RETRY)
    assert {r.status for r in state.steps.values()} == {StepStatus.ROLLED_BACK}
    assert _data(core, configmap) == {"seed": "1", "a": "original"}
    order = [e.data["step_id"] for e in case.log.events() if e.type == "step.rolling-back"]
    assert order == ["s2", "s1"]
    assert verify_case(case).ok


def test_rolling_back_one_step_leaves_the_others_in_place(
    case: CaseHandle, k8s_admin: ApiClient, core: CoreV1Api, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a"), mark_step("s2", configmap, "b"))
    Runner(case, plan, ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY).run()
    state = rollback(case, ctx_factory_for(k8s_admin), step_id="s2", retry=FAST_RETRY)
    assert state.steps["s2"].status is StepStatus.ROLLED_BACK
    assert state.steps["s1"].status is StepStatus.VERIFIED
    assert _data(core, configmap) == {"seed": "1", "a": "set-by-s1"}


def test_rolling_back_a_step_that_changed_nothing_is_refused(
    case: CaseHandle, k8s_admin: ApiClient, configmap: tuple[str, str]
) -> None:
    plan = make_plan(mark_step("s1", configmap, "a", destructive=True))
    Runner(case, plan, ctx_factory_for(k8s_admin), PolicyGate(ApprovalPolicy.NONE, "x@y")).run()
    with pytest.raises(RefusedError, match="no applied change"):
        rollback(case, ctx_factory_for(k8s_admin), step_id="s1")
