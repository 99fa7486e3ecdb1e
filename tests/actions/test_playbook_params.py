"""The privileged-container playbook's parameters for the AWS-side evidence and containment steps validate
against the actions' own Params types, and node isolation waits for the verified volatile capture."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from eksir.actions.registry import get_action
from eksir.findings import read_findings_from_path
from eksir.models.finding import Finding
from eksir.models.resolution import (
    ActorResolution,
    ClusterInfo,
    ContainerInfo,
    IdentityMapping,
    InstanceInfo,
    MappingSource,
    NodeInfo,
    PodInfo,
    Resolution,
)
from eksir.playbooks.plan import Plan
from eksir.playbooks.privileged_container import PlaybookOptions, build_plan

MINE = ("eks.delete_access_entry", "logs.audit_actor_changes", "ssm.capture_volatile", "ssm.pause_container")
CONTAINER = "3f2a9c0d1e4b5a6978877665544332211000ffeeddccbbaa9988776655443322"


def _plan(**options: object) -> Plan:
    finding = read_findings_from_path("tests/data/findings/iam-role.boto3.json")[0]
    chosen = PlaybookOptions(
        case_id="eksir-20251120-0123456789", evidence_bucket="ir-evidence-111122223333", pause_container=True
    )
    return build_plan(finding, resolution_of(finding), replace(chosen, **options))  # type: ignore[arg-type]


def resolution_of(finding: Finding) -> Resolution:
    """The finding's pod, node and instance as online resolution would find them."""
    workload = finding.workload
    assert workload is not None
    return Resolution(
        resolved_at=datetime(2025, 11, 20, 4, 0, tzinfo=UTC),
        cluster=ClusterInfo(name="prod-payments"),
        pod=PodInfo(
            namespace=workload.namespace or "payments",
            name=workload.name or "p",
            uid=workload.uid or "6b1d2c3e-4f50-4a6b-8c7d-000000000001",
            node_name="ip-10-0-1-23.eu-west-1.compute.internal",
            containers=(ContainerInfo(name="shell", container_id=f"containerd://{CONTAINER}"),),
        ),
        node=NodeInfo(name="ip-10-0-1-23.eu-west-1.compute.internal", instance_id="i-0123456789abcdef0"),
        instance=InstanceInfo(instance_id="i-0123456789abcdef0"),
        actor=ActorResolution(
            principal_arn="arn:aws:iam::111122223333:role/PlatformAdmin",
            role_name="PlatformAdmin",
            mappings=(
                IdentityMapping(
                    source=MappingSource.ACCESS_ENTRY,
                    principal_arn="arn:aws:iam::111122223333:role/PlatformAdmin",
                ),
            ),
        ),
    )


def test_the_playbook_params_validate_against_each_actions_params() -> None:
    plan = _plan()
    steps = [s for s in plan.steps if s.action_id in MINE]
    assert {s.action_id for s in steps} == set(MINE)
    for step in steps:
        get_action(step.action_id).params_type.model_validate(step.params)


def test_node_isolation_depends_on_the_volatile_capture() -> None:
    plan = _plan()
    by_action = {s.action_id: s for s in plan.steps}
    capture = by_action["ssm.capture_volatile"]
    assert capture.id in by_action["ec2.isolate_instance"].depends_on
    assert capture.id in by_action["ssm.pause_container"].depends_on


def test_the_pause_sends_its_output_beside_the_capture_in_the_evidence_bucket() -> None:
    by_action = {s.action_id: s for s in _plan().steps}
    capture, pause = by_action["ssm.capture_volatile"], by_action["ssm.pause_container"]
    assert pause.params["bucket"] == capture.params["bucket"] == "ir-evidence-111122223333"
    assert pause.params["prefix"] == capture.params["prefix"]
    assert "wait_seconds" not in capture.params  # the action's own bound unless the caller sets one
