"""`eksir deploy template`: what it prints, that cfn-lint finds nothing in it, and how it refuses bad input.

cfn-lint checks the template against the CloudFormation resource specification (types, required properties,
allowed values, references); the deployment through moto is in test_fleet_deploy.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint

from eksir.actions.permissions import all_specs, iam_policy
from eksir.deploy.pipeline import event_pattern
from eksir.deploy.template import fleet_template
from eksir.models.finding import ATTACK_SEQUENCE_TYPES, HANDLED_TYPES, RUNTIME_ESCAPE_TYPES
from tests.cli.helpers import run_in_process

POLICY = iam_policy(all_specs())
TEMPLATE_BODY_LIMIT = 51_200
"""CloudFormation's limit for a template passed inline (`aws cloudformation deploy` without --s3-bucket)."""


def _print(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    code, out, err = run_in_process(["deploy", "template", *args], capsys, monkeypatch)
    assert (code, err) == (0, "")
    return out


def test_yaml_by_default_and_json_on_request_carry_the_same_template(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_yaml = yaml.safe_load(_print([], capsys, monkeypatch))
    as_json = json.loads(_print(["-o", "json"], capsys, monkeypatch))
    assert as_yaml == as_json == fleet_template(POLICY)
    assert "MemberRoleStackSet" not in as_json["Resources"]


def test_org_units_add_the_member_stack_set_carrying_the_member_template(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["-o", "json", "--org-unit", "ou-ab12-cdef3456", "--org-unit", "r-ab12", "--org-unit", "r-ab12"]
    template = json.loads(_print(args, capsys, monkeypatch))
    stack_set = template["Resources"]["MemberRoleStackSet"]["Properties"]
    targets = stack_set["StackInstancesGroup"][0]["DeploymentTargets"]
    assert targets == {"OrganizationalUnitIds": ["ou-ab12-cdef3456", "r-ab12"]}
    member = json.loads(stack_set["TemplateBody"])
    assert member["Resources"]["ResponderRole"]["Properties"]["RoleName"] == {"Ref": "RoleName"}
    assert {p["ParameterKey"] for p in stack_set["Parameters"]} == set(member["Parameters"])


@pytest.mark.parametrize("bad", ["ou-1", "OU-AB12-CDEF3456", "123456789012", "ou-ab12-cdef3456 "])
def test_a_malformed_org_unit_is_bad_input_in_one_line(
    bad: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_in_process(["deploy", "template", "--org-unit", bad], capsys, monkeypatch)
    assert (code, out) == (3, "")
    assert err.count("\n") == 1
    assert err.startswith("eksir: error: --org-unit")


def test_the_rule_matches_both_privileged_container_types_and_every_handled_type() -> None:
    pattern = event_pattern()
    assert pattern["source"] == ["aws.guardduty"]
    assert pattern["detail-type"] == ["GuardDuty Finding"]
    types = pattern["detail"]["type"]
    assert types == sorted(HANDLED_TYPES)
    assert {
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
    } <= set(types)
    assert set(types) >= ATTACK_SEQUENCE_TYPES | RUNTIME_ESCAPE_TYPES


def _lint(template: dict[str, Any]) -> list[str]:
    return [str(m) for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))]


@pytest.mark.parametrize("org_units", [(), ("ou-ab12-cdef3456",)], ids=["alone", "with-stack-set"])
def test_cfn_lint_finds_nothing_and_the_template_fits_inline(org_units: tuple[str, ...]) -> None:
    template = fleet_template(POLICY, org_units)
    assert _lint(template) == []
    assert len(json.dumps(template, separators=(",", ":"))) < TEMPLATE_BODY_LIMIT
    assert len(yaml.safe_dump(template)) < TEMPLATE_BODY_LIMIT


def test_the_worker_command_names_the_stacks_queue_bucket_table_and_member_role() -> None:
    container = fleet_template(POLICY)["Resources"]["WorkerTaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    command = container["Command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "serve"
    assert options == {
        "--queue-url": {"Ref": "FindingQueue"},
        "--cases-dir": {"Fn::Sub": "s3://${CaseBucket}/cases"},
        "--lock-table": {"Ref": "LeaseTable"},
        "--concurrency": {"Ref": "Concurrency"},
        "--assume-role": {"Fn::Sub": "arn:${AWS::Partition}:iam::{account}:role/${MemberRoleName}"},
    }
