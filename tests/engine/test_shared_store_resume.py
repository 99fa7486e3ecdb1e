"""A runner killed (SIGKILL) holding an S3 case's lease: the lease outlives it only until it expires, then a
runner on another machine (another local copy) takes it over with a higher fencing token and resumes through
the ordinary resume logic, applying no step twice (counted in the case log and on the API server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes.client import ApiClient, CoreV1Api

from eksir.engine import ApprovalPolicy, PolicyGate, Runner, StateStore, StepStatus
from eksir.errors import RefusedError
from eksir.lab.controlplane import ControlPlane
from eksir.playbooks.plan import Plan
from eksir.store import CaseStore, verify_case
from tests.engine import cm_actions
from tests.engine.conftest import FAST_RETRY, RAW, ctx_factory_for, make_plan, mark_step
from tests.factories import make_finding
from tests.store.s3_fixtures import SharedStore, shared_store  # noqa: F401 - the fixture

pytestmark = pytest.mark.lab
ALL = PolicyGate(ApprovalPolicy.ALL, "tester@lab")
REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = "3"


def test_a_runner_killed_holding_the_lease_is_taken_over_after_expiry_and_resumed_without_a_second_apply(
    shared_store: SharedStore,  # noqa: F811 - the fixture imported above
    control_plane: ControlPlane,
    k8s_admin: ApiClient,
    core: CoreV1Api,
    configmap: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EKSIR_LEASE_SECONDS", LEASE_SECONDS)
    case, _ = CaseStore(shared_store.url, "tester@lab").open_for_finding(
        make_finding(id=uuid.uuid4().hex), RAW, "finding.json"
    )
    marker = tmp_path / "applied.marker"

    def plan() -> Plan:
        return make_plan(
            mark_step("s1", configmap, "a"),
            mark_step("s2", configmap, "b", depends_on=("s1",), hang_marker=str(marker)),
            mark_step("s3", configmap, "c", depends_on=("s2",)),
        )

    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan().model_dump_json())
    child_env = {**os.environ, "EKSIR_S3_CACHE": str(tmp_path / "machine-one")}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.child_runner", f"{shared_store.url}/{case.case_id}",
         str(plan_file), str(control_plane.admin_kubeconfig)],
        cwd=REPO, env=child_env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert child.poll() is None, "the child runner exited before reaching the marker"
            assert time.monotonic() < deadline, "the child runner never reached the marker"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    other = CaseStore(shared_store.url, "tester@lab").get(case.case_id)  # machine two: its own copy
    killed = StateStore(other).load()
    assert killed.steps["s2"].status is StepStatus.APPLYING
    with pytest.raises(RefusedError, match=f"pid {child.pid} on "):
        Runner(other, plan(), ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY)

    with other.writer("wait for the dead holder's lease to expire", wait=True):
        pass
    marker.unlink()
    runner = Runner(other, plan(), ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY)
    state = runner.run()

    assert {r.status for r in state.steps.values()} == {StepStatus.VERIFIED}
    assert [cm_actions.mutations(core, *configmap, k) for k in "abc"] == [1, 1, 1]
    assert state.steps["s2"].resumed
    events = list(CaseStore(shared_store.url).get(case.case_id).log.events())
    applied = [e.data["step_id"] for e in events if e.type == "step.applied"]
    assert sorted(applied) == ["s1", "s2", "s3"]
    child_tokens = {e.fence or 0 for e in events if e.actor == "child@lab"}
    resumed_tokens = {e.fence or 0 for e in events if e.type.startswith("step.") and e.actor == "tester@lab"}
    assert 0 < max(child_tokens) < min(resumed_tokens)
    assert verify_case(other).ok


def _state_writes(events: list[Any]) -> list[int]:
    return [e.seq for e in events if e.type == "document.written" and e.data["path"] == "plan-state.json"]


def test_a_shared_case_writes_its_state_file_when_the_run_ends_not_per_transition(
    shared_store: SharedStore,  # noqa: F811 - the fixture imported above
    k8s_admin: ApiClient,
    configmap: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each state file version is two S3 PUTs; the step events carry every transition, so a shared case's
    file is written with the plan and when the run ends, and still says exactly what the log says."""
    case, _ = CaseStore(shared_store.url, "tester@lab").open_for_finding(
        make_finding(id=uuid.uuid4().hex), RAW, "finding.json"
    )
    plan = make_plan(
        mark_step("s1", configmap, "a"),
        mark_step("s2", configmap, "b", depends_on=("s1",)),
        mark_step("s3", configmap, "c", depends_on=("s2",)),
    )

    Runner(case, plan, ctx_factory_for(k8s_admin), ALL, retry=FAST_RETRY).run()

    monkeypatch.setenv("EKSIR_S3_CACHE", str(tmp_path / "machine-two"))
    copy = CaseStore(shared_store.url).get(case.case_id)
    events = list(copy.log.events())
    transitions = [e.seq for e in events if e.type.startswith("step.")]
    assert len(transitions) >= 12, "checked, approved, applying, applied, verified per step"
    state_writes = _state_writes(events)
    assert len(state_writes) == 2, "the plan's, and the run's end"
    written = orjson.loads((copy.path / "plan-state.json").read_bytes())
    assert transitions[-1] <= written["last_seq"] < state_writes[-1], "it includes every transition"
    assert {s["status"] for s in written["steps"].values()} == {"verified"}
    assert verify_case(copy).ok


def test_a_case_folder_still_writes_its_state_file_at_every_transition(
    k8s_admin: ApiClient, configmap: tuple[str, str], tmp_path: Path
) -> None:
    case, _ = CaseStore(tmp_path / "cases", "tester@lab").open_for_finding(
        make_finding(id=uuid.uuid4().hex), RAW, "finding.json"
    )
    Runner(case, make_plan(mark_step("s1", configmap, "a")), ctx_factory_for(k8s_admin), ALL).run()

    events = list(case.log.events())
    assert len(_state_writes(events)) > len([e for e in events if e.type.startswith("step.")])
