"""The policy's scoping, checked offline, and the member-account template, linted and deployed through moto.

moto matches only `Resource: "*"` outside S3/IAM/STS/SQS and ignores conditions (shared/DESIGN.md), so the
scoping cannot be proven by calling AWS here: parliament (its copy of AWS's Service Authorization Reference)
checks that every scoped action matches one of its statement's ARNs and that no `*` is left where AWS can
name the resource; the unit tests pin each conditioned statement. cfn-lint checks the template against the
CloudFormation resource specification; moto's CloudFormation then creates it and every resource is read back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from parliament import analyze_policy_string, iam_definition

from eksir.actions.permission_scopes import CASE_TAG, CONDITIONED, SERVICE_RESOURCES, UNSCOPED
from eksir.actions.permissions import all_specs, cluster_role, iam_policy
from eksir.actions.permissions_template import MANAGED_POLICY_LIMIT, cloudformation_template, split_statements
from eksir.lab.moto_server import AwsEndpoint
from tests.cli.helpers import run_in_process

POLICY = iam_policy(all_specs())
_PRIVILEGES = {s["prefix"]: {p["privilege"]: p for p in s["privileges"]} for s in iam_definition}


def _resource_types(action: str) -> list[str]:
    service, name = action.split(":")
    privilege = _PRIVILEGES[service][name]
    return [r["resource_type"].rstrip("*") for r in privilege["resource_types"] if r["resource_type"]]


def test_parliament_finds_no_mismatched_resource_and_no_needless_star() -> None:
    findings = analyze_policy_string(json.dumps(POLICY), include_community_auditors=False).findings
    assert [(f.issue, f.detail) for f in findings] == []


def test_every_action_aws_knows_and_unscoped_only_where_aws_names_no_resource() -> None:
    granted = {a for st in POLICY["Statement"] for a in st["Action"]}
    assert all(_resource_types(a) == [] for a in UNSCOPED & granted)
    for statement in POLICY["Statement"]:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= UNSCOPED, statement["Sid"]
        else:
            assert all(_resource_types(a) for a in statement["Action"]), statement["Sid"]


def test_changes_to_what_eksir_created_need_the_case_tag() -> None:
    by_sid = {st["Sid"]: st for st in POLICY["Statement"]}
    owned = by_sid["EksirEc2CaseResources"]
    assert owned["Condition"] == {"Null": {f"aws:ResourceTag/{CASE_TAG}": "false"}}
    assert {"ec2:DeleteSecurityGroup", "ec2:RevokeSecurityGroupEgress"} <= set(owned["Action"])
    created = by_sid["EksirEc2CreateTagged"]
    assert created["Condition"] == {"Null": {f"aws:RequestTag/{CASE_TAG}": "false"}}
    assert "ec2:CreateSecurityGroup" in created["Action"]
    assert by_sid["EksirEc2TagOnCreate"]["Condition"]["StringEquals"]["ec2:CreateAction"] == [
        "CreateSecurityGroup",
        "CreateSnapshot",
        "CreateSnapshots",
    ]
    conditioned = {a for grant in CONDITIONED for a in grant.actions}
    unconditioned = [st for st in POLICY["Statement"] if "Condition" not in st]
    assert not conditioned & {a for st in unconditioned for a in st["Action"]}


def test_eks_iam_and_logs_are_limited_to_the_resource_types_eksir_touches() -> None:
    by_sid = {st["Sid"]: st for st in POLICY["Statement"]}
    assert by_sid["EksirEks"]["Resource"] == list(SERVICE_RESOURCES["eks"])
    assert not any("addon" in arn for arn in by_sid["EksirEks"]["Resource"])
    # node groups only for DescribeNodegroup (the managed group's Auto Scaling group, resolve/nodegroup.py)
    assert [arn for arn in by_sid["EksirEks"]["Resource"] if "nodegroup" in arn] == [
        "arn:aws:eks:*:*:nodegroup/*/*/*"
    ]
    assert by_sid["EksirLogs"]["Resource"] == ["arn:aws:logs:*:*:log-group:/aws/eks/*"]
    assert "cloudtrail:LookupEvents" in by_sid["EksirCloudtrailAny"]["Action"]
    assert {"sns:Publish"} == set(by_sid["EksirSns"]["Action"])
    assert {"eks:CreateAccessEntry", "eks:DeleteAccessEntry"} <= set(by_sid["EksirEks"]["Action"])


def test_the_policy_is_split_under_the_managed_policy_limit_with_every_statement_kept() -> None:
    chunks = split_statements(POLICY["Statement"])
    assert [st for chunk in chunks for st in chunk] == POLICY["Statement"]
    for chunk in chunks:
        document = {"Version": "2012-10-17", "Statement": chunk}
        assert len(json.dumps(document, separators=(",", ":"))) < MANAGED_POLICY_LIMIT


def _template(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    code, out, err = run_in_process(["permissions", "--format", "cloudformation"], capsys, monkeypatch)
    assert code == 0, err
    template: dict[str, Any] = json.loads(out)
    assert template == cloudformation_template(POLICY)
    return template


def test_cfn_lint_finds_nothing_in_the_template(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    template = _template(capsys, monkeypatch)
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert [str(m) for m in matches] == []


def test_the_template_deploys_through_moto_and_reads_back_as_generated(
    moto_server: AwsEndpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's CloudFormation creates both resource types used here (AWS::IAM::Role, AWS::IAM::ManagedPolicy);
    it skips none of them. Parameters and Fn::Sub/GetAtt are resolved by moto as CloudFormation would."""
    template = _template(capsys, monkeypatch)
    cfn, iam = moto_server.client("cloudformation"), moto_server.client("iam")
    params = {"SecurityAccountId": "210987654321", "ExternalId": "xid-1", "RoleName": "eksir-responder-t"}
    cfn.create_stack(
        StackName="eksir-responder",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName="eksir-responder")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = cfn.list_stack_resources(StackName="eksir-responder")["StackResourceSummaries"]
    assert {r["ResourceType"] for r in resources} == {"AWS::IAM::Role", "AWS::IAM::ManagedPolicy"}
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources)
    role = iam.get_role(RoleName="eksir-responder-t")["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "xid-1"}}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    attached = iam.list_attached_role_policies(RoleName="eksir-responder-t")["AttachedPolicies"]
    statements = []
    for item in sorted(attached, key=lambda p: p["PolicyName"]):
        policy = iam.get_policy(PolicyArn=item["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=item["PolicyArn"], VersionId=policy["DefaultVersionId"])
        statements += version["PolicyVersion"]["Document"]["Statement"]
    assert statements == POLICY["Statement"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["RoleArn"] == role["Arn"]


def test_no_rbac_rule_impersonates_without_naming_whom() -> None:
    for rule in cluster_role(all_specs())["rules"]:
        if "impersonate" in rule["verbs"]:
            assert rule.get("resourceNames"), rule


def test_impersonation_is_granted_only_on_named_identities_and_an_unbounded_one_is_refused() -> None:
    from eksir.actions.base import ActionSpec, Phase, RbacRule
    from eksir.actions.permissions import rbac_rules

    replay = RbacRule(("",), ("users", "groups"), ("impersonate",), ("attacker@case", "system:authenticated"))
    reads = RbacRule(("",), ("pods",), ("get",))
    spec = ActionSpec("t.replay", Phase.POST_INCIDENT, "replay", rbac=(reads, replay))
    assert rbac_rules([spec]) == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["groups", "users"],
            "verbs": ["impersonate"],
            "resourceNames": ["attacker@case", "system:authenticated"],
        },
    ]
    unbounded = ActionSpec(
        "t.bad", Phase.POST_INCIDENT, "bad", rbac=(RbacRule(("",), ("users",), ("impersonate",)),)
    )
    with pytest.raises(ValueError, match=r"t.bad: \['impersonate'\] needs resource_names"):
        rbac_rules([unbounded])
