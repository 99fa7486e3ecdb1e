"""Issue 19 against the lab's real servers: a reverse shell in the attacker's container, an attack sequence
naming two workloads on two nodes, and a `kubectl debug node --profile=sysadmin` pod created by the lab's own
kubectl, each run through `eksir triage` / `eksir plan` as a responder runs them (subprocesses).

The findings are authored (no real sample exists, see data/findings/new-types/SOURCES.md) but every object
they name is the lab's: pods, uids, nodes, instances and the attacker's access key are read from the lab,
and the debug pod's finding is built from the pod kubectl created and its audit event, as GuardDuty does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api
from kubernetes.config import new_client_from_config

from eksir.lab import k8s_seed
from eksir.lab import lab as lab_module
from tests.lab_plugin import lab_disabled
from tests.new_findings import (
    Pod,
    Sequence,
    debug_pod_finding,
    in_account,
    runtime_finding,
    sequence_finding,
    workload_from_pod,
)

pytestmark = pytest.mark.lab


@dataclass
class Lab:
    state: lab_module.LabState
    admin: ApiClient
    detail: dict[str, Any]
    env: dict[str, str]
    root: Path

    def access(self) -> list[str]:
        return ["--endpoint-url", self.state.aws_endpoint, "--region", self.state.region,
                "--kubeconfig", self.state.admin_kubeconfig]  # fmt: skip

    def eksir(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eksir", *args], capture_output=True, text=True, env=self.env,
            timeout=240, check=False,
        )  # fmt: skip

    def write(self, name: str, wire: dict[str, Any]) -> str:
        path = self.root / name
        path.write_text(json.dumps(in_account(wire, self.detail)))
        return str(path)

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        raw = CoreV1Api(self.admin).read_namespaced_pod(name, namespace)
        result: dict[str, Any] = self.admin.sanitize_for_serialization(raw)
        return result

    def instance_of(self, node: str) -> str:
        provider = CoreV1Api(self.admin).read_node(node).spec.provider_id
        return str(provider).rsplit("/", 1)[-1]

    def as_pod(self, namespace: str, name: str) -> Pod:
        pod = self.pod(namespace, name)
        container = pod["spec"]["containers"][0]
        status = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
        container_id = (status.get("containerID") or "").removeprefix("containerd://") or "0" * 64
        return Pod(
            namespace=namespace, name=name, uid=pod["metadata"]["uid"], image=container["image"],
            container=container["name"], container_id=container_id,
            instance_id=self.instance_of(pod["spec"]["nodeName"]),
        )  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("issue19-lab")
    state = lab_module.up(lab_dir, "iam-user", seed=20261207)
    env = {**os.environ, **state.endpoint.env(), "COLUMNS": "200"}
    env.pop("KUBECONFIG", None)
    detail = json.loads(Path(state.finding).read_text())["detail"]
    admin = new_client_from_config(state.admin_kubeconfig)
    try:
        yield Lab(state, admin, detail, env, tmp_path_factory.mktemp("issue19-files"))
    finally:
        admin.close()
        lab_module.down(Path(state.lab_dir))


def _attacker(lab: Lab) -> Pod:
    workload = lab.detail["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    return lab.as_pod(workload["namespace"], workload["name"])


def _plan(lab: Lab, finding: str, cases: str) -> dict[str, Any]:
    result = lab.eksir("plan", finding, "--cases-dir", cases, *lab.access(), "--output", "json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_a_reverse_shell_in_the_attackers_container_runs_the_same_playbook(lab: Lab) -> None:
    attacker = _attacker(lab)
    finding = lab.write("shell.json", runtime_finding("reverse-shell", attacker, finding_id="e" * 32))
    cases = str(lab.root / "shell-cases")
    triage = lab.eksir("triage", finding, "--cases-dir", cases, "--output", "json")
    assert triage.returncode == 0, triage.stderr
    document = json.loads(triage.stdout)
    assert document["finding"]["family"] == "runtime-escape"
    assert document["runtime"]["process"]["executable_path"] == "/usr/bin/bash"
    assert [p["name"] for p in document["runtime"]["lineage"]] == ["bash", "containerd-shim"]
    stored = json.loads((Path(cases) / document["case"]["id"] / "triage.json").read_text())
    assert stored["runtime"] == document["runtime"]
    steps = _plan(lab, finding, cases)["plan"]["steps"]
    isolate = next(s for s in steps if s["action_id"] == "k8s.isolate_pod")
    assert isolate["params"]["pod_uid"] == attacker.uid
    assert any(s["params"].get("instance_id") == attacker.instance_id for s in steps)


def _other_pod(lab: Lab, attacker: Pod) -> Pod:
    """A workload pod of the lab on another node than the attacker's."""
    pods = CoreV1Api(lab.admin).list_pod_for_all_namespaces().items
    for pod in pods:
        node = pod.spec.node_name
        if pod.metadata.namespace == "kube-system" or not node or pod.metadata.name == attacker.name:
            continue
        if lab.instance_of(node) != attacker.instance_id:
            return lab.as_pod(pod.metadata.namespace, pod.metadata.name)
    raise AssertionError("the lab has no workload pod on a second node")


def test_an_attack_sequence_naming_two_workloads_on_two_nodes_is_one_case_with_per_resource_steps(
    lab: Lab,
) -> None:
    attacker = _attacker(lab)
    other = _other_pod(lab, attacker)
    keys = lab.detail["resource"]["accessKeyDetails"]
    scope = Sequence(
        (attacker, other), cluster=lab.state.cluster,
        cluster_arn=lab.detail["resource"]["eksClusterDetails"]["arn"],
        access_key=keys["accessKeyId"], principal_id=keys["principalId"], user_name=keys["userName"],
    )  # fmt: skip
    finding = lab.write("sequence.json", sequence_finding("eks", scope, finding_id="f" * 32))
    cases = str(lab.root / "sequence-cases")
    triage = lab.eksir("triage", finding, "--cases-dir", cases, "--output", "json")
    assert triage.returncode == 0, triage.stderr
    document = json.loads(triage.stdout)
    workloads = [e["key"] for e in document["scope"] if e["kind"] == "workload"]
    assert workloads == [f"{attacker.namespace}/{attacker.name}", f"{other.namespace}/{other.name}"]
    first = _plan(lab, finding, cases)
    assert first["case_id"] == document["case"]["id"]
    assert sorted(p.name for p in Path(cases).iterdir() if not p.name.startswith(".")) == [first["case_id"]]
    steps = {s["id"]: s for s in first["plan"]["steps"]}
    for pod in (attacker, other):
        isolate = steps[f"pod/{pod.namespace}/{pod.name}#s03-k8s.isolate_pod"]
        assert isolate["params"]["pod_uid"] == pod.uid
    nodes = {s["params"]["instance_id"] for s in steps.values() if s["action_id"] == "ec2.isolate_instance"}
    assert nodes == {attacker.instance_id, other.instance_id}
    keys_off = [s for s in steps.values() if s["action_id"] == "iam.deactivate_access_key"]
    assert [s["id"] for s in keys_off] == [f"key/{keys['accessKeyId']}#s09-iam.deactivate_access_key"]
    uncovered = [
        n["subject"] for n in first["plan"]["notes"] if n["subject"].startswith(("node ", "credential "))
    ]
    assert uncovered == []
    again = _plan(lab, finding, cases)
    assert [s["id"] for s in again["plan"]["steps"]] == [s["id"] for s in first["plan"]["steps"]]
    assert again["case_id"] == first["case_id"]


def _kubectl_debug(lab: Lab, node: str, *profile: str) -> dict[str, Any]:
    """Run the lab's kubectl exactly as an admin would; return the pod it created."""
    result = subprocess.run(
        [lab.state.kubectl, "--kubeconfig", lab.state.admin_kubeconfig, "-n", "default", "debug",
         f"node/{node}", *profile, "--image=busybox:1.36"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pods = CoreV1Api(lab.admin).list_namespaced_pod("default").items
    [name] = [p.metadata.name for p in pods if p.metadata.name.startswith(f"node-debugger-{node}-")]
    return lab.pod("default", name)


def test_kubectl_debug_node_sysadmin_is_authorized_with_its_change_record_and_suspicious_without(
    lab: Lab,
) -> None:
    node = CoreV1Api(lab.admin).list_node().items[0].metadata.name
    pod = _kubectl_debug(lab, node, "--profile=sysadmin")
    assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True
    # kubectl v1.34 labels the pod (the issue said it has none); GuardDuty's finding carries no labels anyway.
    assert pod["metadata"].get("labels") == {"app.kubernetes.io/managed-by": "kubectl-debug"}
    assert [pod["spec"].get(k) for k in ("hostPID", "hostNetwork", "hostIPC")] == [True, True, True]
    events = [
        e for e in k8s_seed.read_audit_log(Path(lab.state.audit_log))
        if e.get("verb") == "create" and e.get("stage") == "ResponseComplete"
        and (e.get("objectRef") or {}).get("name") == pod["metadata"]["name"]
    ]  # fmt: skip
    [event] = events
    at = datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))
    user = event["user"]
    wire = debug_pod_finding(
        node, pod["metadata"]["name"].rsplit("-", 1)[1], sysadmin=True, user=user["username"],
        groups=tuple(user.get("groups", [])), user_agent=event["userAgent"], uid=pod["metadata"]["uid"],
        at=at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )  # fmt: skip
    wire["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"] = workload_from_pod(pod)
    finding = lab.write("debug.json", wire)
    record = {
        "id": "CHG-2026-1207", "principals": [user["username"]], "namespaces": ["default"],
        "window_start": (at - timedelta(hours=1)).isoformat(),
        "window_end": (at + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    verdicts = {}
    for name, config in (("with", {"change_records": [record]}), ("without", {})):
        path = lab.root / f"config-{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = lab.eksir("triage", finding, "--no-case", "--config", str(path), "--output", "json")
        assert result.returncode == 0, result.stderr
        verdicts[name] = json.loads(result.stdout)
    authorized, suspicious = verdicts["with"], verdicts["without"]
    assert authorized["node_debugger"]["genuine"] is True
    assert authorized["node_debugger"]["profile"] == "sysadmin"
    assert authorized["verdict"]["decision"] == "authorized-change"
    assert authorized["verdict"]["change_record"] == "CHG-2026-1207"
    criterion = authorized["verdict"]["suppression_filter"]["FindingCriteria"]["Criterion"]
    assert criterion["resource.kubernetesDetails.kubernetesWorkloadDetails.name"] == {
        "Matches": ["node-debugger-*"]
    }
    assert criterion["resource.kubernetesDetails.kubernetesUserDetails.username"] == {
        "Equals": [user["username"]]
    }
    assert "updatedAt" in criterion
    assert suspicious["verdict"]["decision"] == "suspicious"
    assert "no change record or allow-listed admin group" in suspicious["verdict"]["reasons"][0]
    assert datetime.now(UTC) - at < timedelta(minutes=10)


def test_kubectl_debug_node_with_the_default_profile_is_recognised_as_not_privileged(lab: Lab) -> None:
    node = CoreV1Api(lab.admin).list_node().items[1].metadata.name
    pod = _kubectl_debug(lab, node)
    assert not (pod["spec"]["containers"][0].get("securityContext") or {}).get("privileged")
    wire = debug_pod_finding(node, pod["metadata"]["name"].rsplit("-", 1)[1], sysadmin=False)
    wire["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"] = workload_from_pod(pod)
    result = lab.eksir("triage", lab.write("debug-general.json", wire), "--no-case", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["finding"]["type"].endswith("ContainerWithSensitiveMount")
    assert document["node_debugger"]["profile"] == "general"
    assert document["node_debugger"]["genuine"] is True
    assert document["verdict"]["decision"] == "suspicious"


def test_a_runtime_finding_naming_only_its_container_finds_the_pod_by_container_id(lab: Lab) -> None:
    attacker = _attacker(lab)
    assert attacker.container_id != "0" * 64  # the lab's pods carry containerd ids in their status
    wire = runtime_finding("docker-socket", attacker, finding_id="d" * 32)
    del wire["resource"]["kubernetesDetails"]
    finding = lab.write("socket.json", wire)
    cases = str(lab.root / "socket-cases")
    steps = _plan(lab, finding, cases)["plan"]["steps"]
    isolate = next(s for s in steps if s["action_id"] == "k8s.isolate_pod")
    assert isolate["params"]["pod_uid"] == attacker.uid


def test_respond_to_the_reverse_shell_isolates_the_attackers_pod(lab: Lab) -> None:
    """Last in the module: it changes the lab (the other tests only read it)."""
    attacker = _attacker(lab)
    finding = lab.write("shell-respond.json", runtime_finding("reverse-shell", attacker, finding_id="9" * 32))
    cases = str(lab.root / "respond-cases")
    result = lab.eksir(
        "respond", finding, "--trust-finding-file", "--approve", "all", "--yes", "--cases-dir", cases,
        *lab.access(), "--output", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    case_id = json.loads(result.stdout)["case_id"]
    state = json.loads((Path(cases) / case_id / "plan-state.json").read_text())
    isolate = next(s for s in state["plan"]["steps"] if s["action_id"] == "k8s.isolate_pod")
    # the lab's VPC CNI enforces no NetworkPolicy and the attacker's pod is standalone: isolation is in
    # place but reported not effective with its reason (issue 15), never green
    isolated = state["steps"][isolate["id"]]
    assert isolated["status"] == "not-effective"
    assert "not enforced" in isolated["detail"]
    pod = lab.pod(attacker.namespace, attacker.name)
    assert pod["metadata"]["labels"].get("eksir.io/case-id") == case_id
    policies = NetworkingV1Api(lab.admin).list_namespaced_network_policy(attacker.namespace).items
    assert [p.metadata.labels.get("eksir.io/case-id") for p in policies].count(case_id) == 1
