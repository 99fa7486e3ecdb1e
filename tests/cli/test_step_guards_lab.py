"""Outage blocks and the failed capture's choice, end to end against the lab (real kube-apiserver, moto).

- Outage: the lab's attacker pod is given a PodDisruptionBudget at its minimum (`disruptionsAllowed: 0`, set
  on the status subresource: the lab runs no kube-controller-manager), so isolating that Ready pod is an
  outage. `plan` shows the step blocked with the reason, `respond` leaves it `blocked` (no NetworkPolicy, no
  label) and exits 12 naming the override; `resume --override-outage REASON` runs it and the case records who
  accepted the outage and why.
- Capture: the capture's evidence bucket does not exist, so the capture fails at its check (a real failure
  mode, fast and deterministic). Node isolation is not silently blocked: `plan` states the choice and its
  trade-off; declined, the instance keeps its groups and the step says what stays open; approved with
  `--approve-step <step>:without-evidence`, the instance is isolated and the approval is recorded.
Every effect is read back through the Kubernetes and EC2 APIs, never through eksir's own verify.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api, PolicyV1Api
from kubernetes.config import new_client_from_config

from eksir.errors import ExitCode
from eksir.lab import lab as lab_module
from tests.lab_plugin import lab_disabled

pytestmark = pytest.mark.lab
ISOLATE_POD = "s03-k8s.isolate_pod"
CAPTURE = "s01-ssm.capture_volatile"
ISOLATE_NODE = "s16-ec2.isolate_instance"
WITHOUT = f"{ISOLATE_NODE}:without-evidence"
PDB = "attacker-pod-budget"


@dataclass
class Lab:
    state: lab_module.LabState
    admin: ApiClient
    pod: dict[str, Any]
    env: dict[str, str]

    def eksir(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eksir", *args],
            capture_output=True, text=True, env=self.env, timeout=300, check=False,
        )  # fmt: skip

    def access(self) -> list[str]:
        state = self.state
        return ["--endpoint-url", state.aws_endpoint, "--region", state.region,
                "--kubeconfig", state.admin_kubeconfig]  # fmt: skip

    def cases(self, name: str) -> str:
        path = Path(self.state.lab_dir) / name
        path.mkdir(exist_ok=True)
        return str(path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("guards")
    state = lab_module.up(lab_dir, "iam-user", seed=20240611)
    env = {**os.environ, **state.endpoint.env(), "COLUMNS": "250"}
    env.pop("KUBECONFIG", None)
    pod = json.loads(Path(state.ground_truth).read_text())["pod"]
    admin = new_client_from_config(state.admin_kubeconfig)
    try:
        yield Lab(state, admin, pod, env)
    finally:
        admin.close()
        lab_module.down(lab_dir)


def _budget_at_minimum(lab: Lab) -> None:
    """A PDB selecting the attacker pod with no disruption left (its status as a controller would set it)."""
    policy, namespace = PolicyV1Api(lab.admin), lab.pod["namespace"]
    labels = CoreV1Api(lab.admin).read_namespaced_pod(lab.pod["name"], namespace).metadata.labels
    body = {"metadata": {"name": PDB}, "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}}
    policy.create_namespaced_pod_disruption_budget(namespace, body)
    status = {"currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "disruptionsAllowed": 0}
    policy.patch_namespaced_pod_disruption_budget_status(PDB, namespace, {"status": status})


def _netpols(lab: Lab) -> list[str]:
    found = NetworkingV1Api(lab.admin).list_namespaced_network_policy(lab.pod["namespace"]).items
    return [p.metadata.name for p in found]


def _steps(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {s["step_id"]: s for s in json.loads(done.stdout)["steps"]}


def test_a_pdb_at_its_minimum_blocks_pod_isolation_until_the_outage_is_accepted_with_a_reason(
    lab: Lab,
) -> None:
    _budget_at_minimum(lab)
    try:
        cases = lab.cases("outage")
        plan = lab.eksir("plan", lab.state.finding, "--cases-dir", cases, *lab.access())
        assert plan.returncode == 0, plan.stderr
        assert "blocked (outage): needs --override-outage REASON" in plan.stdout
        assert f"PodDisruptionBudget {PDB} allows 0 disruptions" in plan.stdout
        before = _netpols(lab)

        done = lab.eksir("respond", lab.state.finding, "--trust-finding-file", "--approve", "all",
                         "--yes", "--approver", "carol", "--cases-dir", cases, *lab.access(),
                         "-o", "json")  # fmt: skip
        assert done.returncode == ExitCode.REFUSED, done.stderr
        assert f"blocked by the outage check ({ISOLATE_POD})" in done.stderr
        assert "--override-outage REASON" in done.stderr
        record = _steps(done)[ISOLATE_POD]
        assert record["status"] == "blocked"
        assert f"PodDisruptionBudget {PDB} allows 0 disruptions" in record["detail"]
        assert _netpols(lab) == before  # nothing isolated the pod
        cordon = _steps(done)["s06-k8s.cordon_node"]  # issue: every approver was recorded as root@vm
        assert (cordon["status"], cordon["approval"]["approver"]) == ("verified", "carol")
        case_id = json.loads(done.stdout)["case_id"]

        status = lab.eksir("status", case_id, "--cases-dir", cases)
        assert "blocked by the outage check" in status.stdout

        reason = "payments owner accepts the outage: traffic drained to region B"
        resumed = lab.eksir("resume", case_id, "--approve", "all", "--yes", "--approver", "alice",
                            "--override-outage", reason, "--trust-finding-file", "--cases-dir", cases,
                            *lab.access(), "-o", "json")  # fmt: skip
        record = _steps(resumed)[ISOLATE_POD]
        assert record["status"] in ("verified", "not-effective"), record  # the lab has no enforcing CNI
        assert record["outage_override"]["approver"] == "alice"
        assert record["outage_override"]["reason"] == reason
        assert len(_netpols(lab)) == len(before) + 1
        events = (Path(cases) / case_id / "events.jsonl").read_text().splitlines()
        overridden = [json.loads(e) for e in events if '"step.outage-overridden"' in e]
        assert [(e["data"]["step_id"], e["data"]["reason"]) for e in overridden] == [(ISOLATE_POD, reason)]
        assert lab.eksir("rollback", case_id, "--yes", "--cases-dir", cases, *lab.access()).returncode == 0
    finally:
        PolicyV1Api(lab.admin).delete_namespaced_pod_disruption_budget(PDB, lab.pod["namespace"])


def _groups(lab: Lab) -> dict[str, list[str]]:
    ec2 = lab.state.endpoint.client("ec2")
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [lab.pod["instance_id"]]}]
    )["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis}


def test_a_failed_capture_offers_isolation_without_evidence_as_its_own_approval(lab: Lab) -> None:
    cases, bucket = lab.cases("capture"), "eksir-no-such-evidence-bucket"
    plan = lab.eksir("plan", lab.state.finding, "--evidence-bucket", bucket, "--cases-dir", cases,
                     *lab.access(), "-o", "json")  # fmt: skip
    steps = {s["id"]: s for s in json.loads(plan.stdout)["plan"]["steps"]}
    fallback = steps[ISOLATE_NODE]["fallback"]
    assert fallback["approval_id"] == WITHOUT
    assert fallback["without"] == [CAPTURE]
    assert "not collected" in fallback["trade_off"]
    before = _groups(lab)

    declined = lab.eksir("respond", lab.state.finding, "--trust-finding-file", "--evidence-bucket", bucket,
                         "--approve-step", ISOLATE_NODE, "--cases-dir", cases, *lab.access(),
                         "-o", "json")  # fmt: skip
    assert declined.returncode == ExitCode.STEP_FAILED, declined.stderr  # the capture failed
    steps = _steps(declined)
    assert steps[CAPTURE]["status"] == "failed"
    assert f"evidence bucket {bucket} does not exist" in steps[CAPTURE]["detail"]
    node = steps[ISOLATE_NODE]
    assert node["status"] == "blocked"
    assert f"isolate now without volatile evidence ({WITHOUT}) not approved" in node["detail"]
    assert "the node stays on the network" in node["detail"]
    assert _groups(lab) == before
    case_id = json.loads(declined.stdout)["case_id"]
    status = _steps(lab.eksir("status", case_id, "--cases-dir", cases, "-o", "json"))[ISOLATE_NODE]
    assert status["error_kind"] == "fallback-declined"
    assert status["fallback"]["approval_id"] == WITHOUT
    assert status["fallback"]["trade_off"].startswith("the node is cut off now")

    approved = lab.eksir("resume", case_id, "--trust-finding-file", "--approve-step", WITHOUT,
                         "--approver", "bob", "--cases-dir", cases, *lab.access(), "-o", "json")  # fmt: skip
    node = _steps(approved)[ISOLATE_NODE]
    assert node["status"] == "verified", node
    assert node["fallback_approval"]["approver"] == "bob"
    assert node["approval"]["how"].startswith(WITHOUT)
    assert _groups(lab) != before  # the isolation group replaced the node's groups
    assert lab.eksir("rollback", case_id, "--yes", "--cases-dir", cases, *lab.access()).returncode == 0
    assert _groups(lab) == before
