"""The game-day path against the sandbox's real EKS cluster: attack, respond, verify, roll back, clean up.

An attacker IAM user with namespace-scoped Kubernetes access (an access entry) launches a privileged pod
with its own key; eksir plans and responds to the finding of that pod (world.py: why the finding is written
here) with no --kubeconfig and no KUBECONFIG, so it reaches the cluster with an EKS token as any real user
does; the effects are read back independently (the attacker's key deactivated in IAM, the pod's isolation
policy in the namespace), rolled back, the case verified, and everything the run created removed.

Approvals: only the pod's isolation and the attacker key's deactivation (by step id), so a run leaves the
sandbox's nodes alone; EKSIR_TEST_AWS_APPROVE_ALL=1 approves every step (node isolation, cordon, snapshots;
rolled back afterwards, the snapshots kept as evidence). Needs EKSIR_TEST_AWS_CLUSTER tagged
eksir.io/sandbox=true, with access entries enabled, and the maintainer's identity allowed to administer it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws_real.conftest import Sandbox, require
from tests.aws_real.sandbox import cluster_refusal
from tests.aws_real.world import World, finding

pytestmark = pytest.mark.aws_real
APPROVED = ("k8s.isolate_pod", "iam.deactivate_access_key")


def eksir(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a responder runs it: the maintainer's AWS environment, no kubeconfig at all."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )


@pytest.fixture(scope="module")
def world(sandbox: Sandbox) -> Iterator[World]:
    name = require(sandbox.config.cluster, "EKSIR_TEST_AWS_CLUSTER")
    cluster = sandbox.client("eks").describe_cluster(name=name)["cluster"]
    problem = cluster_refusal(name, cluster.get("tags", {}))
    if problem:
        pytest.fail(f"make test-aws: {problem}", pytrace=False)
    mode = cluster.get("accessConfig", {}).get("authenticationMode", "CONFIG_MAP")
    if mode == "CONFIG_MAP":
        pytest.skip(f"cluster {name} has authenticationMode CONFIG_MAP: the attacker needs an access entry")
    created = World(sandbox, cluster)
    try:
        created.create_attacker()
        created.attack()
        yield created
    finally:
        leftovers = created.cleanup()
        assert not leftovers, f"run {created.run} left behind: {leftovers}"


def _respond(world: World, finding_path: Path, cases: Path) -> dict[str, Any]:
    plan = eksir("plan", str(finding_path), "--cases-dir", str(cases), "--output", "json")
    assert plan.returncode == 0, plan.stderr
    steps = json.loads(plan.stdout)["plan"]["steps"]
    if world.sandbox.config.approve_all:
        approval = ["--approve", "all", "--yes"]
    else:
        approval = [arg for s in steps if s["action_id"] in APPROVED for arg in ("--approve-step", s["id"])]
        assert len(approval) == 2 * len(APPROVED), [s["action_id"] for s in steps]
    result = eksir(
        "respond",
        str(finding_path),
        "--trust-finding-file",
        *approval,
        "--cases-dir",
        str(cases),
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_eksir_contains_the_real_attack_and_rolls_it_back(world: World, tmp_path: Path) -> None:
    finding_path, cases = tmp_path / "finding.json", tmp_path / "cases"
    finding_path.write_text(json.dumps(finding(world.attack_record())), encoding="utf-8")
    assert world.key_status() == "Active"
    document = _respond(world, finding_path, cases)
    statuses = {s["action_id"]: s["status"] for s in document["steps"]}
    assert statuses["iam.deactivate_access_key"] == "verified", statuses
    # verified where the CNI enforces NetworkPolicy, not-effective (said so) where it does not
    assert statuses["k8s.isolate_pod"] in {"verified", "not-effective"}, statuses
    assert world.key_status() == "Inactive"
    assert world.network_policies(), "the pod's isolation policy is in the namespace"
    case_id = document["case_id"]
    rollback = eksir("rollback", case_id, "--yes", "--cases-dir", str(cases), "--output", "json")
    assert rollback.returncode == 0, rollback.stderr
    assert world.key_status() == "Active"
    assert world.network_policies() == []
    verify = eksir("case", "verify", case_id, "--cases-dir", str(cases))
    assert verify.returncode == 0, verify.stdout + verify.stderr
