"""The finding types added in issue 19 read in every form: runtime escapes, the sensitive-mount sibling,
kubectl debug node pods and attack sequences (fixtures in data/findings/new-types, see SOURCES.md there)."""

from __future__ import annotations

import json

import pytest

from eksir.errors import BadInputError, NotAFindingError
from eksir.findings import read_findings, require_handled
from eksir.models.finding import Finding, FindingFamily, SourceFormat

from .conftest import FIXTURES

NEW = FIXTURES / "new-types"


def _one(name: str) -> Finding:
    [finding] = require_handled(read_findings(NEW / name))
    return finding


@pytest.mark.parametrize(
    ("name", "context"),
    [
        ("runtime-reverse-shell.wire.json", {}),
        ("runtime-mounts-host-directory.wire.json", {"mountSource": "/", "mountTarget": "/mnt/host"}),
        ("runtime-docker-socket.wire.json", {"socketPath": "/var/run/docker.sock"}),
        ("runtime-runc-escape.wire.json", {"runcBinaryPath": "/usr/bin/runc", "fileOperation": "write"}),
        ("runtime-release-agent.wire.json", {"releaseAgentPath": "/sys/fs/cgroup/rdma/release_agent"}),
    ],
)
def test_runtime_findings_resolve_to_container_pod_node_and_process_tree(
    name: str, context: dict[str, str]
) -> None:
    finding = _one(name)
    assert finding.family is FindingFamily.RUNTIME_ESCAPE
    assert finding.handled
    assert finding.workload is not None
    assert finding.workload.name == "debug-tools-7d9c4"
    assert finding.container is not None
    assert finding.container.id is not None
    assert finding.container.id.startswith("9f2d7a1c")
    assert finding.instance_id == "i-0a1b2c3d4e5f60718"
    assert finding.runtime is not None
    assert finding.runtime.process is not None
    assert finding.runtime.process.executable_path == "/usr/bin/bash"
    assert [p.name for p in finding.runtime.lineage] == ["bash", "containerd-shim"]
    assert context.items() <= finding.runtime.context.items()


def test_the_release_agent_finding_keeps_the_modifying_process() -> None:
    runtime = _one("runtime-release-agent.wire.json").runtime
    assert runtime is not None
    assert runtime.modifying_process is not None
    assert runtime.modifying_process.executable_path == "/bin/sh"


@pytest.mark.parametrize("form", ["wire", "boto3", "eventbridge"])
def test_reverse_shell_reads_the_same_in_every_form(form: str) -> None:
    finding = _one(f"runtime-reverse-shell.{form}.json")
    assert finding.type == "Execution:Runtime/ReverseShell"
    assert finding.runtime is not None
    assert finding.runtime.process is not None
    assert finding.runtime.process.pid == 4213
    assert finding.runtime.lineage[0].uuid == "a2b3c4d5-0000-4000-8000-000000000002"


def test_a_runtime_type_on_a_plain_ec2_instance_is_not_a_kubernetes_finding() -> None:
    wire = json.loads((NEW / "runtime-reverse-shell.wire.json").read_text())
    wire["resource"] = {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0"}}
    [finding] = read_findings(json.dumps(wire).encode())
    assert finding.family is FindingFamily.NOT_KUBERNETES
    with pytest.raises(NotAFindingError):
        require_handled([finding])


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("node-debugger-sysadmin.wire.json", "PrivilegedContainer"),
        ("node-debugger-general.wire.json", "ContainerWithSensitiveMount"),
    ],
)
def test_both_kubectl_debug_profiles_run_the_privileged_container_plan(name: str, suffix: str) -> None:
    finding = _one(name)
    assert finding.type.endswith(suffix)
    assert finding.family is FindingFamily.PRIVILEGED_CONTAINER


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("attack-sequence-eks.wire.json", SourceFormat.WIRE),
        ("attack-sequence-eks.boto3.json", SourceFormat.BOTO3),
        ("attack-sequence-eks.eventbridge.json", SourceFormat.EVENTBRIDGE),
        ("attack-sequence-eks.asff.json", SourceFormat.ASFF),
    ],
)
def test_an_eks_attack_sequence_reads_the_same_in_every_form(name: str, source: SourceFormat) -> None:
    finding = _one(name)
    assert finding.source_format is source
    assert finding.type == "AttackSequence:EKS/CompromisedCluster"
    assert finding.family is FindingFamily.ATTACK_SEQUENCE
    assert finding.cluster is not None
    assert finding.cluster.name == "prod-payments"
    sequence = finding.sequence
    assert sequence is not None
    assert sequence.uid == "6a1f0c9e-2d3b-4c5d-8e7f-90a1b2c3d4e5"
    workloads = [
        (r.namespace, r.name) for r in sequence.resources if r.resource_type == "KUBERNETES_WORKLOAD"
    ]
    assert workloads == [("payments", "debug-tools-7d9c4"), ("payments", "checkout-api-6c8f9d7b5-x2k4q")]
    kinds = {r.resource_type for r in sequence.resources}
    assert {"EKS_CLUSTER", "CONTAINER", "EC2_INSTANCE", "ACCESS_KEY"} <= kinds
    assert [s.type for s in sequence.signals] == ["FINDING", "EKS_AUDIT_LOGS", "FINDING", "CLOUD_TRAIL"]
    assert sequence.signals[1].first_seen is not None
    assert sequence.signals[1].first_seen.minute == 36
    assert sequence.actors[0].credential_uid == "AKIAIOSFODNN7EXAMPLE"
    assert {"MALICIOUS_PACKAGE", "MISCONFIGURATION", "REACHABILITY", "SENSITIVE_DATA", "VULNERABILITY"} <= {
        i.key for i in sequence.indicators
    }


@pytest.mark.parametrize("kind", ["ec2", "iam"])
def test_the_ec2_and_iam_sequences_are_handled_and_take_their_cluster_from_the_sequence(kind: str) -> None:
    finding = _one(f"attack-sequence-{kind}.wire.json")
    assert finding.family is FindingFamily.ATTACK_SEQUENCE
    assert finding.cluster is not None
    assert finding.cluster.name == "prod-payments"


def test_an_attack_sequence_without_its_sequence_is_bad_input() -> None:
    wire = json.loads((NEW / "attack-sequence-eks.wire.json").read_text())
    del wire["service"]["detection"]
    [finding] = read_findings(json.dumps(wire).encode())
    with pytest.raises(BadInputError, match="no Sequence naming a resource"):
        require_handled([finding])


def test_a_hostile_sequence_is_bounded() -> None:
    wire = json.loads((NEW / "attack-sequence-eks.wire.json").read_text())
    resource = wire["service"]["detection"]["sequence"]["resources"][1]
    wire["service"]["detection"]["sequence"]["resources"] = [
        {**resource, "uid": f"u{i}", "name": "x" * 100_000} for i in range(5000)
    ]
    [finding] = read_findings(json.dumps(wire).encode())
    assert finding.sequence is not None
    assert len(finding.sequence.resources) == 400
    assert all(len(r.name or "") <= 2048 for r in finding.sequence.resources)
