"""Instance and Auto Scaling group marks held by several cases at once (fleet mode), against moto's EC2/ASG.

Two cases on one node and one group: both verify; the first rollback keeps every mark and the second case
still verifies; the second rollback restores the value before eksir; a value already "on" before any case
stays on. Once through the actions, once through the engine (Runner, then `rollback` per case), node isolation
included there (test_isolation_holds.py has its own cases).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eksir.actions.base import Action, ActionContext, ActionParams, Phase
from eksir.actions.containment.asg_processes import PROCESSES, AsgGroupParams, SuspendScalingProcesses
from eksir.actions.containment.aws_holds import HOLD_PREFIX, MAX_TAGS, hold_key
from eksir.actions.containment.ec2_hardening import DisableMetadata
from eksir.actions.containment.ec2_node import (
    AsgProtectParams,
    EnableTerminationProtection,
    InstanceParams,
    ProtectInstanceFromScaleIn,
)
from eksir.actions.evidence.snapshots import SnapshotVolumes, SnapshotVolumesParams
from eksir.actions.recovery.node_retire import ClearProtectionParams, ClearTerminationProtection
from eksir.engine import ApprovalPolicy, PolicyGate, Runner, StepStatus, rollback
from eksir.errors import BadInputError, RefusedError
from eksir.playbooks.plan import Plan, PlanStep
from eksir.store import CaseHandle, CaseStore
from tests.actions.conftest import AwsEndpoint, boto_client, make_ctx, one_instance_group
from tests.factories import FIRST_SEEN, make_finding

GROUP = "eks-ng-shared"
CASE_A = "eksir-20261207-0a1b2c3d4e"
CASE_B = "eksir-20261207-f9e8d7c6b5"


@dataclass(frozen=True)
class Target:
    instance_id: str
    group: str


@pytest.fixture
def target(moto: AwsEndpoint) -> Target:
    """One Auto Scaling group with one instance: the node several cases share."""
    return Target(one_instance_group(moto, GROUP), GROUP)


@dataclass(frozen=True)
class Mark:
    """One step and how the test reads and pre-sets its mark in moto, independently of the action."""

    step: str
    name: str
    """The mark's name in the hold tag's value."""
    action: Action[Any]
    params: Callable[[Target], ActionParams]
    is_on: Callable[[AwsEndpoint, Target], bool]
    turn_on: Callable[[AwsEndpoint, Target], None]
    tags: Callable[[AwsEndpoint, Target], dict[str, str]]


def _instance_tags(moto: AwsEndpoint, t: Target) -> dict[str, str]:
    found = boto_client(moto, "ec2").describe_tags(
        Filters=[{"Name": "resource-id", "Values": [t.instance_id]}]
    )
    return {x["Key"]: x["Value"] for x in found["Tags"]}


def _group_tags(moto: AwsEndpoint, t: Target) -> dict[str, str]:
    found = boto_client(moto, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[t.group])
    return {x["Key"]: x["Value"] for x in found["AutoScalingGroups"][0].get("Tags", [])}


def _terminate_protected(moto: AwsEndpoint, t: Target) -> bool:
    attr = boto_client(moto, "ec2").describe_instance_attribute(
        InstanceId=t.instance_id, Attribute="disableApiTermination"
    )
    return bool(attr["DisableApiTermination"]["Value"])


def _scale_in_protected(moto: AwsEndpoint, t: Target) -> bool:
    found = boto_client(moto, "autoscaling").describe_auto_scaling_instances(InstanceIds=[t.instance_id])
    return bool(found["AutoScalingInstances"][0]["ProtectedFromScaleIn"])


def _metadata_off(moto: AwsEndpoint, t: Target) -> bool:
    found = boto_client(moto, "ec2").describe_instances(InstanceIds=[t.instance_id])
    return bool(found["Reservations"][0]["Instances"][0]["MetadataOptions"]["HttpEndpoint"] == "disabled")


def _suspended(moto: AwsEndpoint, t: Target) -> bool:
    found = boto_client(moto, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[t.group])
    held = {p["ProcessName"] for p in found["AutoScalingGroups"][0].get("SuspendedProcesses", [])}
    return set(PROCESSES) <= held


MARKS = [
    Mark(
        "ec2.enable_termination_protection",
        "termination-protection",
        EnableTerminationProtection(),
        lambda t: InstanceParams(instance_id=t.instance_id),
        _terminate_protected,
        lambda m, t: boto_client(m, "ec2").modify_instance_attribute(
            InstanceId=t.instance_id, DisableApiTermination={"Value": True}
        ),
        _instance_tags,
    ),
    Mark(
        "asg.protect_instance",
        "scale-in-protection",
        ProtectInstanceFromScaleIn(),
        lambda t: AsgProtectParams(autoscaling_group=t.group, instance_id=t.instance_id),
        _scale_in_protected,
        lambda m, t: boto_client(m, "autoscaling").set_instance_protection(
            InstanceIds=[t.instance_id], AutoScalingGroupName=t.group, ProtectedFromScaleIn=True
        ),
        _instance_tags,
    ),
    Mark(
        "ec2.disable_metadata",
        "metadata-disabled",
        DisableMetadata(),
        lambda t: InstanceParams(instance_id=t.instance_id),
        _metadata_off,
        lambda m, t: boto_client(m, "ec2").modify_instance_metadata_options(
            InstanceId=t.instance_id, HttpEndpoint="disabled"
        ),
        _instance_tags,
    ),
    Mark(
        "asg.suspend_processes",
        "suspended-processes",
        SuspendScalingProcesses(),
        lambda t: AsgGroupParams(autoscaling_group=t.group),
        _suspended,
        lambda m, t: boto_client(m, "autoscaling").suspend_processes(
            AutoScalingGroupName=t.group, ScalingProcesses=list(PROCESSES)
        ),
        _group_tags,
    ),
]


def _ctx(moto: AwsEndpoint, case_id: str) -> ActionContext:
    return make_ctx(aws=lambda service: boto_client(moto, service), case_id=case_id)


def _eksir_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith("eksir.io/")}


@pytest.mark.parametrize("mark", MARKS, ids=lambda m: m.step)
def test_two_cases_hold_one_mark_and_only_the_last_rollback_restores_it(
    moto: AwsEndpoint, target: Target, mark: Mark
) -> None:
    a, b, params = _ctx(moto, CASE_A), _ctx(moto, CASE_B), mark.params(target)
    applied_a = mark.action.apply(a, params)
    assert not mark.action.check(b, params).already_applied, "case A's mark is not case B's hold"
    applied_b = mark.action.apply(b, params)
    assert mark.action.check(b, params).already_applied
    assert mark.is_on(moto, target)
    assert mark.action.verify(a, params, applied_a).ok
    assert mark.action.verify(b, params, applied_b).ok
    tags = mark.tags(moto, target)
    assert {k: v for k, v in tags.items() if k.startswith(HOLD_PREFIX)} == {
        hold_key(CASE_A): mark.name,
        hold_key(CASE_B): mark.name,
    }

    mark.action.rollback(a, params, applied_a)
    assert mark.is_on(moto, target), "the first rollback left the mark on for the other case"
    assert mark.action.verify(b, params, applied_b).ok
    outcome = mark.action.verify(a, params, applied_a)
    assert not outcome.ok
    assert CASE_A in outcome.detail

    mark.action.rollback(b, params, applied_b)
    assert not mark.is_on(moto, target), "the last rollback restores the value from before eksir"
    assert _eksir_tags(mark.tags(moto, target)) == {}
    assert not mark.action.verify(b, params, applied_b).ok


@pytest.mark.parametrize("mark", MARKS, ids=lambda m: m.step)
def test_a_mark_on_before_any_case_stays_on_after_both_rollbacks(
    moto: AwsEndpoint, target: Target, mark: Mark
) -> None:
    mark.turn_on(moto, target)
    a, b, params = _ctx(moto, CASE_A), _ctx(moto, CASE_B), mark.params(target)
    applied_a = mark.action.apply(a, params)
    applied_b = mark.action.apply(b, params)
    assert mark.action.verify(a, params, applied_a).ok
    mark.action.rollback(b, params, applied_b)  # the other order: the first case is the last to go
    mark.action.rollback(a, params, applied_a)
    assert mark.is_on(moto, target)
    assert _eksir_tags(mark.tags(moto, target)) == {}


@pytest.mark.parametrize("mark", MARKS, ids=lambda m: m.step)
def test_a_repeated_apply_and_rollback_of_one_case_change_nothing_more(
    moto: AwsEndpoint, target: Target, mark: Mark
) -> None:
    a, b, params = _ctx(moto, CASE_A), _ctx(moto, CASE_B), mark.params(target)
    applied_a = mark.action.apply(a, params)
    applied_b = mark.action.apply(b, params)
    again = mark.action.apply(a, params)
    assert {k: v for k, v in again.items() if k != "previous"} == {
        k: v for k, v in applied_a.items() if k != "previous"
    }, "the second apply records the same value from before eksir"
    mark.action.rollback(a, params, applied_a)
    mark.action.rollback(a, params, applied_a)  # a retried rollback must not release the other case's hold
    assert mark.is_on(moto, target)
    assert mark.action.verify(b, params, applied_b).ok


def test_a_hold_that_would_pass_fifty_tags_is_refused_before_any_change(
    moto: AwsEndpoint, target: Target
) -> None:
    ec2 = boto_client(moto, "ec2")
    have = len(_instance_tags(moto, target))
    filler = [{"Key": f"team:{i}", "Value": "x"} for i in range(MAX_TAGS - have - 1)]
    ec2.create_tags(Resources=[target.instance_id], Tags=filler)
    params = InstanceParams(instance_id=target.instance_id)
    with pytest.raises(RefusedError, match="50") as raised:
        EnableTerminationProtection().apply(_ctx(moto, CASE_A), params)
    assert "\n" not in str(raised.value)
    assert not _terminate_protected(moto, target)
    assert len(_instance_tags(moto, target)) == MAX_TAGS - 1


def test_a_case_id_that_cannot_be_in_a_tag_key_is_refused() -> None:
    assert len(hold_key("eksir-" + "f" * 108)) == 128
    for bad in ("", "a b", "x" * 115, "-lead", "é,"):
        with pytest.raises(BadInputError, match="cannot name the tag"):
            hold_key(bad)


def _open_case(root: Path) -> CaseHandle:
    handle, _ = CaseStore(root, actor="tester@lab").open_for_finding(
        make_finding(id=uuid.uuid4().hex, arn=None), b"{}\n", "finding.json"
    )
    return handle


def _plan(target: Target) -> Plan:
    actions = [(m.step, m.params(target).model_dump()) for m in MARKS]
    actions.append(("ec2.isolate_instance", {"instance_id": target.instance_id}))
    steps = tuple(
        PlanStep(
            id=action.replace(".", "-"),
            action_id=action,
            params=params,
            phase=Phase.CONTAINMENT,
            rationale="shared node",
        )
        for action, params in actions
    )
    return Plan(playbook="test", finding_id="f-1", created_at=FIRST_SEEN, steps=steps)


def test_two_cases_through_the_engine_share_every_mark_until_the_last_rollback(
    moto: AwsEndpoint, target: Target, tmp_path: Path
) -> None:
    gate = PolicyGate(ApprovalPolicy.ALL, "tester@lab")
    enis = _eni_groups(moto, target)
    cases = [_open_case(tmp_path / "a"), _open_case(tmp_path / "b")]  # two incidents, one node
    assert cases[0].case_id != cases[1].case_id
    factories = [lambda c=c: _ctx(moto, c.case_id) for c in cases]
    for case, factory in zip(cases, factories, strict=True):
        state = Runner(case, _plan(target), factory, gate).run()
        assert {r.status for r in state.steps.values()} == {StepStatus.VERIFIED}, state.steps

    rollback(cases[0], factories[0])
    assert all(m.is_on(moto, target) for m in MARKS)
    for m in MARKS:
        assert m.action.verify(factories[1](), m.params(target), {}).ok, m.step
    isolated = {g for groups in _eni_groups(moto, target).values() for g in groups}
    assert isolated == {_isolation_group(moto, cases[1].case_id)}, "still isolated for case B"

    rollback(cases[1], factories[1])
    assert not any(m.is_on(moto, target) for m in MARKS)
    assert _eksir_tags(_instance_tags(moto, target)) == {}
    assert _eksir_tags(_group_tags(moto, target)) == {}
    assert _eni_groups(moto, target) == enis


def _eni_groups(moto: AwsEndpoint, t: Target) -> dict[str, list[str]]:
    found = boto_client(moto, "ec2").describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [t.instance_id]}]
    )["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in found}


def _isolation_group(moto: AwsEndpoint, case_id: str) -> str:
    found = boto_client(moto, "ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"eksir-isolation-{case_id}"]}]
    )["SecurityGroups"]
    return str(found[0]["GroupId"])


def test_retiring_the_node_is_refused_while_another_case_holds_its_termination_protection(
    moto: AwsEndpoint,
) -> None:
    ec2 = boto_client(moto, "ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    protect, params = EnableTerminationProtection(), InstanceParams(instance_id=instance)
    a, b = _ctx(moto, CASE_A), _ctx(moto, CASE_B)
    protect.apply(a, params)
    applied_b = protect.apply(b, params)
    SnapshotVolumes().apply(a, SnapshotVolumesParams(instance_id=instance))
    clear, clear_params = ClearTerminationProtection(), ClearProtectionParams(instance_id=instance)
    refused = clear.check(a, clear_params)
    assert not refused.ok
    assert CASE_B in refused.detail
    with pytest.raises(RefusedError, match=CASE_B):
        clear.apply(a, clear_params)
    assert _terminate_protected(moto, Target(instance, GROUP))

    protect.rollback(b, params, applied_b)
    assert clear.check(a, clear_params).ok, "case A's own hold does not stop case A"


def test_one_case_spends_one_tag_per_resource_whatever_it_holds_there(
    moto: AwsEndpoint, target: Target
) -> None:
    """Several cases on one node: each case costs one of the instance's 50 tags, not one per mark."""
    a = _ctx(moto, CASE_A)
    on_instance = [m for m in MARKS if m.tags is _instance_tags]
    applied = {m.step: m.action.apply(a, m.params(target)) for m in on_instance}
    tags = _instance_tags(moto, target)
    assert [k for k in tags if k.startswith(HOLD_PREFIX)] == [hold_key(CASE_A)]
    assert set(tags[hold_key(CASE_A)].split()) == {m.name for m in on_instance}

    first, *rest = on_instance
    first.action.rollback(a, first.params(target), applied[first.step])
    assert not first.is_on(moto, target)
    assert set(_instance_tags(moto, target)[hold_key(CASE_A)].split()) == {m.name for m in rest}
    assert all(m.action.verify(a, m.params(target), applied[m.step]).ok for m in rest)
