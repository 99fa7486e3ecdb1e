"""Two runners in two processes on one case: the second is refused while the first runs, so no destructive
step is applied twice (the count of applies is read from the case log and the API server)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from eksir.engine import StepStatus
from eksir.lab.controlplane import ControlPlane
from eksir.store import CaseHandle, verify_case
from tests.engine import cm_actions
from tests.engine.conftest import make_plan, mark_step

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]


def _runner(case: CaseHandle, plan_file: Path, kubeconfig: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.engine.child_runner", str(case.path), str(plan_file), str(kubeconfig)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _applied_events(case: CaseHandle) -> list[str]:
    return [str(e.data["step_id"]) for e in case.log.events() if e.type == "step.applied"]


def test_a_second_runner_process_is_refused_and_no_destructive_step_is_applied_twice(
    case: CaseHandle, control_plane: ControlPlane, core: CoreV1Api, configmap: tuple[str, str], tmp_path: Path
) -> None:
    plan = make_plan(
        *(mark_step(f"s{k}", configmap, k, destructive=True, apply_delay=2.0) for k in "abc"),
    )
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    first = _runner(case, plan_file, control_plane.admin_kubeconfig)
    deadline = time.monotonic() + 60
    while not any(e.type == "step.applying" for e in case.log.events()):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first runner never started applying"
        time.sleep(0.02)
    second = _runner(case, plan_file, control_plane.admin_kubeconfig)
    _, second_err = second.communicate(timeout=120)
    _, first_err = first.communicate(timeout=120)

    assert first.returncode == 0, first_err
    assert second.returncode == 12, second_err
    assert f"pid {first.pid} on " in second_err
    assert sorted(_applied_events(case)) == ["sa", "sb", "sc"]
    assert [cm_actions.mutations(core, *configmap, k) for k in "abc"] == [1, 1, 1]
    statuses = {e.data["status"] for e in case.log.events() if e.type.startswith("step.")}
    assert StepStatus.VERIFIED.value in statuses
    assert verify_case(case).ok
