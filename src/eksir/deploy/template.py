"""The security account's fleet-mode template: parameters, every resource, the outputs, and (with OUs) the
member accounts' StackSet.

Why one template: a security team deploys fleet mode once, in the GuardDuty delegated administrator account,
and every name the worker needs (queue URL, bucket, table, member role) comes from the same stack, so the
worker's command cannot point at the wrong queue. The member accounts' responder role is a second template
(`eksir permissions --format cloudformation`) deployed to every account as a StackSet; given
`--org-unit`, this template carries that StackSet (service-managed, auto-deployed to new accounts of the
OUs), otherwise the README says how to deploy it beside this one. The member role's name and external id
are parameters of both, so they cannot disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from eksir.actions.permissions import DEFAULT_ROLE_NAME
from eksir.actions.permissions_template import cloudformation_template
from eksir.deploy import pipeline, service, worker_role
from eksir.errors import BadInputError

ORG_UNIT = re.compile(r"^(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32})$")
"""An organizational unit id (`ou-...`) or the organization's root (`r-...`), as Organizations spells it."""


def parameters() -> dict[str, Any]:
    """What differs per deployment; everything else is named by CloudFormation."""
    return {
        "ImageUri": {
            "Type": "String",
            "Description": "the worker image (the repository's Dockerfile), by digest",
        },
        "MemberRoleName": {
            "Type": "String",
            "Default": DEFAULT_ROLE_NAME,
            "Description": "the member accounts' responder role (eksir permissions --format cloudformation)",
        },
        "ExternalId": {
            "Type": "String",
            "MinLength": 2,
            "MaxLength": 1224,
            "AllowedPattern": "^[\\w+=,.@:/-]+$",
            "NoEcho": True,
            "Description": "the external id the member roles require",
        },
        "Concurrency": {"Type": "Number", "Default": 4, "MinValue": 1, "MaxValue": 64},
        "WorkerCount": {"Type": "Number", "Default": 2, "MinValue": 0, "MaxValue": 100},
        "MaxReceiveCount": {"Type": "Number", "Default": 5, "MinValue": 1, "MaxValue": 1000},
        "RetentionMode": {
            "Type": "String",
            "Default": "GOVERNANCE",
            "AllowedValues": ["GOVERNANCE", "COMPLIANCE"],
        },
        "RetentionDays": {"Type": "Number", "Default": 365, "MinValue": 1, "MaxValue": 36500},
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "the VPC of the worker subnets"},
        "SubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "subnets with a route to AWS and EKS",
        },
        "AssignPublicIp": {"Type": "String", "Default": "DISABLED", "AllowedValues": ["ENABLED", "DISABLED"]},
    }


def check_org_units(org_units: Sequence[str]) -> list[str]:
    """The OU ids, de-duplicated in order. Raises BadInputError naming the first malformed one."""
    for unit in org_units:
        if not ORG_UNIT.match(unit):
            raise BadInputError(
                f"--org-unit {unit!r} is not an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)"
            )
    return list(dict.fromkeys(org_units))


def member_stack_set(policy: dict[str, Any], org_units: list[str]) -> dict[str, Any]:
    """The member template as a service-managed StackSet on the OUs, in this stack's region."""
    member = cloudformation_template(policy)
    values = {"SecurityAccountId": {"Ref": "AWS::AccountId"}, "ExternalId": {"Ref": "ExternalId"}}
    values["RoleName"] = {"Ref": "MemberRoleName"}
    return {
        "MemberRoleStackSet": {
            "Type": "AWS::CloudFormation::StackSet",
            "Properties": {
                "StackSetName": {"Fn::Sub": "${AWS::StackName}-member-role"},
                "Description": "eksir responder role in every member account of the OUs",
                "PermissionModel": "SERVICE_MANAGED",
                "CallAs": {"Ref": "StackSetCallAs"},
                "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
                "Capabilities": ["CAPABILITY_NAMED_IAM"],
                "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
                "StackInstancesGroup": [
                    {
                        "DeploymentTargets": {"OrganizationalUnitIds": org_units},
                        "Regions": [{"Ref": "AWS::Region"}],
                    }
                ],
                "TemplateBody": json.dumps(member, separators=(",", ":"), sort_keys=True),
            },
        }
    }


def _outputs() -> dict[str, Any]:
    def out(value: Any, description: str) -> dict[str, Any]:
        return {"Value": value, "Description": description}

    return {
        "QueueUrl": out({"Ref": "FindingQueue"}, "eksir serve --queue-url"),
        "DeadLetterQueueUrl": out({"Ref": "DeadLetterQueue"}, "refused and undeliverable messages"),
        "CasesDir": out(
            {"Fn::Sub": f"s3://${{CaseBucket}}/{service.CASES_PREFIX}"}, "--cases-dir of every command"
        ),
        "LockTable": out({"Ref": "LeaseTable"}, "eksir serve --lock-table"),
        "WorkerRoleArn": out({"Fn::GetAtt": ["WorkerRole", "Arn"]}, "the workers' identity"),
        "RuleArn": out({"Fn::GetAtt": ["FindingRule", "Arn"]}, "the EventBridge rule"),
    }


def fleet_template(policy: dict[str, Any], org_units: Sequence[str] = ()) -> dict[str, Any]:
    """The whole template (a dict, JSON-ready). Raises BadInputError for a malformed OU id."""
    units = check_org_units(org_units)
    resources: dict[str, Any] = {
        **pipeline.rule(),
        **pipeline.queues(),
        **pipeline.lease_table(),
        **pipeline.case_bucket(),
        **worker_role.worker_role(policy),
        **service.supporting(),
        **service.task_definition(),
        **service.service(),
    }
    params = parameters()
    if units:
        resources.update(member_stack_set(policy, units))
        params["StackSetCallAs"] = {
            "Type": "String",
            "Default": "DELEGATED_ADMIN",
            "AllowedValues": ["SELF", "DELEGATED_ADMIN"],
            "Description": "SELF in the management account, DELEGATED_ADMIN in a StackSets delegated admin",
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "eksir fleet mode: GuardDuty findings -> EventBridge -> SQS -> eksir on ECS Fargate",
        "Parameters": params,
        "Resources": resources,
        "Outputs": _outputs(),
    }
