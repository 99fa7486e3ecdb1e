"""The fleet template deployed through moto's CloudFormation, every resource read back with its properties.

moto's CloudFormation (moto 5.2) creates every resource *type* of the template except three, and ignores some
properties of the types it creates. Both are listed here (MOTO_SKIPPED_TYPES, MOTO_IGNORED_PROPERTIES) and the
tests create those directly, from the template's own properties resolved against the deployed stack, then
read them back, saying so in each test. What moto does create is read back as moto stored it.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eksir.actions.permissions import all_specs, iam_policy
from eksir.deploy.pipeline import event_pattern
from eksir.deploy.service import CONTAINER_NAME
from eksir.deploy.template import fleet_template
from eksir.deploy.worker_role import fleet_statements
from eksir.lab.moto_server import AwsEndpoint
from tests.deploy.cfn_resolve import StackValues

REPO = Path(__file__).resolve().parents[2]
POLICY = iam_policy(all_specs())
OU = "ou-ab12-cdef3456"
STACK = "eksir-fleet"
ACCOUNT = "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/eksir@sha256:{'a' * 64}"

MOTO_SKIPPED_TYPES = frozenset(
    {"AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::CloudFormation::StackSet"}
)
"""Types moto's CloudFormation does not implement: it warns and creates nothing (the stack still completes).
The stack is not deleted afterwards: moto deletes the role before detaching its managed policies and fails."""
MOTO_IGNORED_PROPERTIES = {
    "CaseBucket": ("VersioningConfiguration", "ObjectLockConfiguration", "PublicAccessBlockConfiguration"),
    "LeaseTable": ("TimeToLiveSpecification",),
    "WorkerTaskDefinition": (
        "RequiresCompatibilities",
        "NetworkMode",
        "Cpu",
        "TaskRoleArn",
        "ExecutionRoleArn",
    ),
    "WorkerService": ("LaunchType", "NetworkConfiguration"),
    "WorkerSecurityGroup": ("SecurityGroupEgress",),
    "ExecutionRole": ("ManagedPolicyArns",),
}
"""Properties moto's CloudFormation accepts and drops (the resource is created without them)."""


@dataclass(frozen=True)
class Deployed:
    template: dict[str, Any]
    physical: dict[str, str]
    values: StackValues
    outputs: dict[str, str]
    moto_warned: frozenset[str]

    def props(self, logical: str) -> Any:
        return self.values.resolve(self.template["Resources"][logical]["Properties"])


def _attributes(aws: AwsEndpoint, physical: dict[str, str]) -> dict[str, str]:
    """The `Fn::GetAtt ... Arn` values of the resources the skipped ones name, read from moto."""
    sqs, iam = aws.client("sqs"), aws.client("iam")

    def queue_arn(url: str) -> str:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    return {
        "FindingQueue.Arn": queue_arn(physical["FindingQueue"]),
        "DeadLetterQueue.Arn": queue_arn(physical["DeadLetterQueue"]),
        "FindingRule.Arn": aws.client("events").describe_rule(Name=physical["FindingRule"])["Arn"],
        "CaseBucket.Arn": f"arn:aws:s3:::{physical['CaseBucket']}",
        "LeaseTable.Arn": aws.client("dynamodb").describe_table(TableName=physical["LeaseTable"])["Table"][
            "TableArn"
        ],
        "WorkerRole.Arn": iam.get_role(RoleName=physical["WorkerRole"])["Role"]["Arn"],
        "ExecutionRole.Arn": iam.get_role(RoleName=physical["ExecutionRole"])["Role"]["Arn"],
    }


@pytest.fixture(scope="module")
def deployed(moto_server: AwsEndpoint) -> Deployed:
    template = fleet_template(POLICY, [OU])
    ec2, cfn = moto_server.client("ec2"), moto_server.client("cloudformation")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    given = {"ImageUri": IMAGE, "ExternalId": "xid-fleet", "VpcId": vpc, "SubnetIds": subnet}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries if r["LogicalResourceId"]}
    defaults = {k: str(p["Default"]) for k, p in template["Parameters"].items() if "Default" in p}
    pseudo = {"AWS::Partition": "aws", "AWS::AccountId": ACCOUNT, "AWS::Region": "us-east-1"}
    refs = {**defaults, **given, **pseudo, "AWS::StackName": STACK, **physical}
    values = StackValues(refs, _attributes(moto_server, physical))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    skipped = {
        m[1] for w in caught if (m := re.search(r"parse (\S+) but it's not supported", str(w.message)))
    }
    return Deployed(template, physical, values, outputs, frozenset(skipped))


def test_moto_creates_every_resource_except_the_types_it_skips(deployed: Deployed) -> None:
    wanted = {k for k, r in deployed.template["Resources"].items() if r["Type"] not in MOTO_SKIPPED_TYPES}
    assert set(deployed.physical) == wanted
    skipped = {r["Type"] for r in deployed.template["Resources"].values()} & MOTO_SKIPPED_TYPES
    assert skipped == MOTO_SKIPPED_TYPES, "the template uses each type the tests create directly"
    assert deployed.moto_warned == MOTO_SKIPPED_TYPES, "moto says which types it skipped"


def test_the_rule_matches_the_handled_findings_and_targets_the_queue_with_the_dlq(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    events = moto_server.client("events")
    rule = events.describe_rule(Name=deployed.physical["FindingRule"])
    assert json.loads(rule["EventPattern"]) == event_pattern()
    assert (rule["State"], rule["EventBusName"]) == ("ENABLED", "default")
    (target,) = events.list_targets_by_rule(Rule=deployed.physical["FindingRule"])["Targets"]
    assert target["Arn"] == deployed.values.attrs["FindingQueue.Arn"]
    assert target["DeadLetterConfig"] == {"Arn": deployed.values.attrs["DeadLetterQueue.Arn"]}


def test_the_queue_redrives_to_the_dead_letter_queue(deployed: Deployed, moto_server: AwsEndpoint) -> None:
    attributes = moto_server.client("sqs").get_queue_attributes(
        QueueUrl=deployed.outputs["QueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": deployed.values.attrs["DeadLetterQueue.Arn"],
        "maxReceiveCount": 5,
    }
    assert (attributes["VisibilityTimeout"], attributes["ReceiveMessageWaitTimeSeconds"]) == ("300", "20")


def test_queue_policy_created_directly_because_moto_skips_the_type(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    """moto skips AWS::SQS::QueuePolicy: its document is set on both queues with SetQueueAttributes."""
    sqs = moto_server.client("sqs")
    props = deployed.props("FindingQueuePolicy")
    assert props["Queues"] == [deployed.physical["FindingQueue"], deployed.physical["DeadLetterQueue"]]
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        stored = json.loads(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
        )
        (statement,) = stored["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": deployed.values.attrs["FindingRule.Arn"]}
        }


def test_the_lease_table_is_keyed_by_case_and_its_ttl_set_directly(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    """moto ignores TimeToLiveSpecification on a templated table: the test enables it (UpdateTimeToLive)."""
    dynamodb = moto_server.client("dynamodb")
    table = dynamodb.describe_table(TableName=deployed.outputs["LockTable"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "case_key", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = deployed.props("LeaseTable")["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=deployed.outputs["LockTable"], TimeToLiveSpecification=ttl)
    described = dynamodb.describe_time_to_live(TableName=deployed.outputs["LockTable"])[
        "TimeToLiveDescription"
    ]
    assert described == {"TimeToLiveStatus": "ENABLED", "AttributeName": "purge_at"}


def test_the_case_bucket_with_versioning_object_lock_and_policy_set_directly(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    """moto creates the bucket (and its encryption) but ignores versioning, Object Lock and the public access
    block on a templated bucket, and skips AWS::S3::BucketPolicy: all four are applied here with the
    template's values (Object Lock on an existing versioned bucket, as S3 allows) and read back."""
    s3, bucket = moto_server.client("s3"), deployed.physical["CaseBucket"]
    assert deployed.outputs["CasesDir"] == f"s3://{bucket}/cases"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    props = deployed.props("CaseBucket")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=props["VersioningConfiguration"])
    lock = props["ObjectLockConfiguration"]
    lock["Rule"]["DefaultRetention"]["Days"] = int(lock["Rule"]["DefaultRetention"]["Days"])
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
    )
    policy = deployed.props("CaseBucketPolicy")
    assert policy["Bucket"] == bucket
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy["PolicyDocument"]))
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    retention = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["Rule"][
        "DefaultRetention"
    ]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 365)
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    (deny,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def test_the_worker_role_holds_the_derived_policy_and_the_fleet_grants(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    iam = moto_server.client("iam")
    role = iam.get_role(RoleName=deployed.physical["WorkerRole"])["Role"]
    assert role["Arn"] == deployed.outputs["WorkerRoleArn"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    statements: list[dict[str, Any]] = []
    for item in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=item["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=item["PolicyArn"], VersionId=policy["DefaultVersionId"])
        statements += version["PolicyVersion"]["Document"]["Statement"]
    by_sid = {st["Sid"]: st for st in statements}
    assert sorted(by_sid) == sorted(st["Sid"] for st in [*POLICY["Statement"], *fleet_statements()])
    assert all(by_sid[st["Sid"]] == st for st in POLICY["Statement"])
    assert all(by_sid[st["Sid"]] == deployed.values.resolve(st) for st in fleet_statements())
    assert by_sid["EksirFleetMemberRoles"]["Resource"] == "arn:aws:iam::*:role/eksir-responder"
    assert by_sid["EksirFleetLeases"]["Resource"] == deployed.values.attrs["LeaseTable.Arn"]


def test_the_task_runs_eksir_serve_on_the_stacks_resources(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    ecs = moto_server.client("ecs")
    task = ecs.describe_task_definition(taskDefinition=deployed.physical["WorkerTaskDefinition"])[
        "taskDefinition"
    ]
    (container,) = task["containerDefinitions"]
    assert (container["name"], container["image"], container["entryPoint"]) == (
        CONTAINER_NAME,
        IMAGE,
        ["eksir"],
    )
    assert container["command"] == [
        "serve",
        "--queue-url",
        deployed.outputs["QueueUrl"],
        "--cases-dir",
        deployed.outputs["CasesDir"],
        "--lock-table",
        deployed.outputs["LockTable"],
        "--concurrency",
        "4",
        "--assume-role",
        "arn:aws:iam::{account}:role/eksir-responder",
    ]
    assert {"name": "EKSIR_EXTERNAL_ID", "value": "xid-fleet"} in container["environment"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == deployed.physical["WorkerLogGroup"]
    groups = moto_server.client("logs").describe_log_groups(
        logGroupNamePrefix=deployed.physical["WorkerLogGroup"]
    )
    assert groups["logGroups"][0]["retentionInDays"] == 365
    (svc,) = ecs.describe_services(
        cluster=deployed.physical["WorkerCluster"], services=[deployed.physical["WorkerService"]]
    )["services"]
    assert (svc["desiredCount"], svc["taskDefinition"]) == (2, task["taskDefinitionArn"])


def test_the_fargate_fields_moto_drops_registered_directly(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    """moto's templated task definition keeps only family, containers and memory: the tests register the
    template's task definition directly (RegisterTaskDefinition) to read back the task role, the execution
    role, awsvpc and FARGATE."""
    props = deployed.props("WorkerTaskDefinition")
    ecs = moto_server.client("ecs")
    task = ecs.register_task_definition(
        family=f"{props['Family']}-direct",
        taskRoleArn=props["TaskRoleArn"],
        executionRoleArn=props["ExecutionRoleArn"],
        networkMode=props["NetworkMode"],
        requiresCompatibilities=props["RequiresCompatibilities"],
        cpu=props["Cpu"],
        memory=props["Memory"],
        containerDefinitions=[{"name": CONTAINER_NAME, "image": IMAGE, "essential": True}],
    )["taskDefinition"]
    assert task["taskRoleArn"] == deployed.outputs["WorkerRoleArn"]
    assert task["executionRoleArn"] == deployed.values.attrs["ExecutionRole.Arn"]
    assert (task["networkMode"], task["requiresCompatibilities"]) == ("awsvpc", ["FARGATE"])


def test_the_member_stack_set_created_directly_because_moto_skips_the_type(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    """AWS::CloudFormation::StackSet is skipped by moto: CreateStackSet and CreateStackInstances are called
    with the template's properties; the stack set is read back with the member template and its parameters."""
    cfn, props = moto_server.client("cloudformation"), deployed.props("MemberRoleStackSet")
    keys = ("StackSetName", "Description", "TemplateBody", "Parameters", "Capabilities", "PermissionModel")
    cfn.create_stack_set(
        **{k: props[k] for k in keys}, AutoDeployment=props["AutoDeployment"], CallAs=props["CallAs"]
    )
    (group,) = props["StackInstancesGroup"]
    cfn.create_stack_instances(
        StackSetName=props["StackSetName"],
        CallAs=props["CallAs"],
        DeploymentTargets=group["DeploymentTargets"],
        Regions=group["Regions"],
    )
    stack_set = cfn.describe_stack_set(StackSetName=props["StackSetName"], CallAs=props["CallAs"])["StackSet"]
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    member = json.loads(stack_set["TemplateBody"])
    assert member["Resources"]["ResponderRole"]["Type"] == "AWS::IAM::Role"
    stored = {p["ParameterKey"]: p["ParameterValue"] for p in stack_set["Parameters"]}
    assert stored == {"SecurityAccountId": ACCOUNT, "ExternalId": "xid-fleet", "RoleName": "eksir-responder"}
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": [OU]}


def _sent(events: Any, event: dict[str, Any]) -> None:
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "EventBusName": "default",
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0


def test_a_handled_finding_reaches_the_queue_and_other_findings_do_not(
    deployed: Deployed, moto_server: AwsEndpoint
) -> None:
    """moto's EventBridge evaluates the deployed rule's pattern and delivers to its SQS target: the example
    finding arrives in the queue; the same event with a type eksir does not handle, or from another source,
    does not."""
    events, sqs = moto_server.client("events"), moto_server.client("sqs")
    handled = json.loads((REPO / "examples" / "finding-eventbridge.json").read_text(encoding="utf-8"))
    other_type = {
        **handled,
        "detail": {**handled["detail"], "type": "Discovery:Kubernetes/SuccessfulAnonymousAccess"},
    }
    other_source = {**handled, "source": "eksir.test"}
    for event in (other_type, other_source, handled):
        _sent(events, event)
    received = sqs.receive_message(
        QueueUrl=deployed.outputs["QueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=2
    )
    bodies = [json.loads(m["Body"]) for m in received.get("Messages", [])]
    assert [(b["source"], b["detail"]["type"], b["detail"]["id"]) for b in bodies] == [
        ("aws.guardduty", handled["detail"]["type"], handled["detail"]["id"])
    ]
