"""`eksir lab up|status|env|down` in a subprocess, as a responder runs them, on a temporary lab folder."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import ApiException

from eksir.errors import LabError
from eksir.lab import k8s_seed, lab, pins
from eksir.lab.build import binaries_dir
from tests.lab_plugin import lab_disabled

pytestmark = pytest.mark.lab


def eksir(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "eksir"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A lab brought up by the CLI; brought down (again) at the end whatever happened."""
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    path = tmp_path_factory.mktemp("cli-lab") / ".eksir-lab"
    result = eksir("lab", "up", "--lab-dir", str(path), "--scenario", "role-chaining")
    assert result.returncode == 0, result.stderr
    yield path
    eksir("lab", "down", "--lab-dir", str(path))


def in_lab_shell(lab_dir: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run `command` in bash after `eval "$(eksir lab env)"`, as the README tells a responder to.

    PATH starts with this environment's bin directory (eksir and the AWS CLI from the lock, as after
    `source .venv/bin/activate`); the lab's own kubectl comes first once the exports are evaluated.
    """
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    script = f'eval "$(eksir lab env --lab-dir {shlex.quote(str(lab_dir))})" && {command}'
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_lab_env_puts_the_labs_own_kubectl_first_on_path(lab_dir: Path) -> None:
    result = in_lab_shell(lab_dir, "command -v kubectl && kubectl version --client -o json")
    assert result.returncode == 0, result.stderr
    path, _, version = result.stdout.partition("\n")
    assert Path(path).parent.parent == binaries_dir().parent
    assert json.loads(version)["clientVersion"]["gitVersion"] == pins.KUBERNETES_VERSION


def test_kubectl_sees_the_nodes_and_the_attacker_pod_through_the_env_exports(lab_dir: Path) -> None:
    result = in_lab_shell(lab_dir, "kubectl get nodes,pods -A -o name")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("node/") == 3
    assert "pod/busybox-shell" in result.stdout


def test_the_aws_cli_lists_the_lab_instances_through_the_env_exports(lab_dir: Path) -> None:
    result = in_lab_shell(lab_dir, "aws ec2 describe-instances --output json")
    assert result.returncode == 0, result.stderr
    instances = [i for r in json.loads(result.stdout)["Reservations"] for i in r["Instances"]]
    assert len(instances) == 4  # three nodes and the attacker's instance


def test_a_crashed_server_makes_status_fail_and_down_leaves_no_process(lab_dir: Path) -> None:
    records = json.loads((lab_dir / "aws" / "processes.json").read_text())
    records += json.loads((lab_dir / "k8s" / "processes.json").read_text())
    pids = {r["name"]: r["pid"] for r in records}
    os.kill(pids["moto"], signal.SIGKILL)  # a process this test session started through the CLI
    crashed = eksir("lab", "status", "--lab-dir", str(lab_dir))
    assert crashed.returncode == 11
    assert "crashed" in crashed.stdout
    assert "moto" in crashed.stderr
    down = eksir("lab", "down", "--lab-dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert not any(alive(pid) for pid in pids.values())
    again = eksir("lab", "down", "--lab-dir", str(lab_dir))
    assert again.returncode == 0
    assert "stopped 0" in again.stderr


def test_an_unknown_scenario_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    result = eksir("lab", "up", "--lab-dir", str(tmp_path / "lab"), "--scenario", "nope")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "eksir: error: unknown lab scenario 'nope'; choose one of: "
        "iam-user, aws-auth-role, oidc-user, service-account, role-chaining, cross-account, fleet"
    ]
    assert not (tmp_path / "lab" / "k8s" / "processes.json").exists()


def test_iam_enforcement_for_a_one_account_scenario_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    """Every key of a one-account lab is moto's default, which moto's IAM enforcement refuses."""
    result = eksir("lab", "up", "--lab-dir", str(tmp_path / "lab"), "--scenario", "iam-user", "--enforce-iam")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "eksir: error: --enforce-iam applies to the organisation scenarios, not iam-user"
    )
    assert not (tmp_path / "lab" / "k8s" / "processes.json").exists()


def test_an_up_that_fails_while_seeding_stops_every_server_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")

    def broken_seed(*_args: object) -> None:
        raise ApiException(status=500, reason="Internal Server Error")

    monkeypatch.setattr(k8s_seed, "seed_cluster", broken_seed)
    with pytest.raises(LabError, match="seeding failed and the lab was stopped: Kubernetes API 500"):
        lab.up(tmp_path, "iam-user")
    pids = [s.record.pid for s in lab.process_status(tmp_path)]
    assert pids == []
    assert (tmp_path / "k8s" / "controlplane.json").exists()  # it did start before the failure
