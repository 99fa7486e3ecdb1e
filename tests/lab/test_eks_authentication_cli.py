"""Issue 14 item 1, from the command line: `eksir plan` reaches the lab cluster as it reaches EKS.

One `eksir lab up` (the detached moto with the lab's EKS endpoint route, the authenticator process) and
`eksir plan` run as a responder runs them, in a subprocess: with no kubeconfig (an EKS token from the lab's
AWS credentials, those of the cluster creator), with `KUBECONFIG`, and with `--kubeconfig` beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksir.errors import ExitCode
from eksir.lab import lab as lab_module
from eksir.lab.pytest_plugin import lab_disabled

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab_module.LabState]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("eks-auth-cli")
    state = lab_module.up(lab_dir, "iam-user", seed=20240611)
    try:
        yield state
    finally:
        lab_module.down(lab_dir)


def _plan(
    state: lab_module.LabState, tmp_path: Path, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("AWS_")}
    command = [sys.executable, "-m", "eksir", "plan", state.finding, "--cases-dir", str(tmp_path), *extra]
    return subprocess.run(
        command,
        env={**base, **state.endpoint.env(), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _authenticator_log(state: lab_module.LabState) -> str:
    return (Path(state.lab_dir) / "k8s" / "eks-authenticator.log").read_text(encoding="utf-8")


def test_plan_with_no_kubeconfig_uses_an_eks_token_the_lab_authenticates(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    done = _plan(lab_state, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "authenticated arn:aws:iam::123456789012:user/moto as kubernetes-admin" in _authenticator_log(
        lab_state
    )


def test_plan_honours_kubeconfig_and_the_option_wins_over_it(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    responder = lab_state.responder_kubeconfig  # a client certificate bound to nothing: 403 on every read
    from_env = _plan(lab_state, tmp_path, KUBECONFIG=responder)
    assert from_env.returncode == ExitCode.PERMISSION_DENIED, from_env.stderr
    assert "forbidden" in from_env.stderr
    flag = _plan(lab_state, tmp_path / "2", "--kubeconfig", lab_state.admin_kubeconfig, KUBECONFIG=responder)
    assert flag.returncode == 0, flag.stderr


def test_a_kubeconfig_variable_naming_no_file_is_bad_input_in_one_line(
    lab_state: lab_module.LabState, tmp_path: Path
) -> None:
    done = _plan(lab_state, tmp_path, KUBECONFIG=str(tmp_path / "missing"))
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("eksir: error: KUBECONFIG=")
