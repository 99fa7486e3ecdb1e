"""The workers: an ECS Fargate service running `eksir serve` from the repository's Dockerfile image.

Why Fargate: a worker is a long-running poller with no inbound traffic, and a security account rarely has a
cluster of its own; Fargate needs only subnets with a route to the AWS APIs and to the member clusters' EKS
endpoints (443 out, nothing in). A private-only EKS endpoint is reachable only from inside its VPC: run the
service in subnets peered or attached to it (README, "Deploying fleet mode").

The container's entry point and command are set here explicitly (`eksir serve --queue-url ... --cases-dir
s3://... --lock-table ... --assume-role arn:...:role/<MemberRoleName>`), so the task runs the same command
whatever the image's ENTRYPOINT says. `{account}` in the role ARN is eksir's template (the finding's
account), not a CloudFormation substitution. StopTimeout gives SIGTERM time to finish the current step and
release the leases. The task role is the worker role (worker_role.py); the execution role only pulls the
image and writes the logs.
"""

from __future__ import annotations

from typing import Any

CONTAINER_NAME = "eksir-worker"
CASES_PREFIX = "cases"
TASK_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
EXECUTION_POLICY = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def serve_command() -> list[Any]:
    """`eksir serve`'s arguments, the stack's resources substituted by CloudFormation."""
    return [
        "serve",
        "--queue-url",
        _ref("FindingQueue"),
        "--cases-dir",
        {"Fn::Sub": f"s3://${{CaseBucket}}/{CASES_PREFIX}"},
        "--lock-table",
        _ref("LeaseTable"),
        "--concurrency",
        _ref("Concurrency"),
        "--assume-role",
        {"Fn::Sub": "arn:${AWS::Partition}:iam::{account}:role/${MemberRoleName}"},
    ]


def _container() -> dict[str, Any]:
    return {
        "Name": CONTAINER_NAME,
        "Image": _ref("ImageUri"),
        "Essential": True,
        "EntryPoint": ["eksir"],
        "Command": serve_command(),
        "Environment": [
            {"Name": "AWS_REGION", "Value": _ref("AWS::Region")},
            {"Name": "EKSIR_EXTERNAL_ID", "Value": _ref("ExternalId")},
        ],
        "StopTimeout": 120,
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": _ref("WorkerLogGroup"),
                "awslogs-region": _ref("AWS::Region"),
                "awslogs-stream-prefix": "worker",
            },
        },
    }


def task_definition() -> dict[str, Any]:
    """The Fargate task: the worker role as task role, the execution role, one container."""
    return {
        "WorkerTaskDefinition": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": {"Fn::Sub": "${AWS::StackName}-worker"},
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": "1024",
                "Memory": "2048",
                "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
                "TaskRoleArn": {"Fn::GetAtt": ["WorkerRole", "Arn"]},
                "ExecutionRoleArn": {"Fn::GetAtt": ["ExecutionRole", "Arn"]},
                "ContainerDefinitions": [_container()],
            },
        }
    }


def supporting() -> dict[str, Any]:
    """The cluster, the log group, the execution role and the egress-only security group."""
    return {
        "WorkerCluster": {
            "Type": "AWS::ECS::Cluster",
            "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
        },
        "WorkerLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 365}},
        "ExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "eksir fleet worker: pull the image, write the logs",
                "AssumeRolePolicyDocument": TASK_TRUST,
                "ManagedPolicyArns": [{"Fn::Sub": EXECUTION_POLICY}],
            },
        },
        "WorkerSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "eksir fleet workers: HTTPS out to the AWS APIs and EKS endpoints only",
                "VpcId": _ref("VpcId"),
                "SecurityGroupEgress": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "CidrIp": "0.0.0.0/0",
                        "Description": "AWS APIs and EKS endpoints",
                    }
                ],
            },
        },
    }


def service() -> dict[str, Any]:
    """`WorkerCount` tasks of the worker, spread over the given subnets."""
    return {
        "WorkerService": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": _ref("WorkerCluster"),
                "TaskDefinition": _ref("WorkerTaskDefinition"),
                "LaunchType": "FARGATE",
                "DesiredCount": _ref("WorkerCount"),
                "DeploymentConfiguration": {"MinimumHealthyPercent": 100, "MaximumPercent": 200},
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": {
                        "Subnets": _ref("SubnetIds"),
                        "SecurityGroups": [_ref("WorkerSecurityGroup")],
                        "AssignPublicIp": _ref("AssignPublicIp"),
                    }
                },
            },
        }
    }
