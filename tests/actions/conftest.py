"""Fixtures for the action tests: moto as a real HTTP server and ActionContext builders.

Why our own moto fixture: the lab's fixtures are still changing; this one is named `actions_moto` so it
never collides with them. Every test gets an empty moto (reset), so tests cannot see each
other's resources.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from eksir.actions.base import ActionContext

CASE_ID = "case-0001"


@dataclass(frozen=True)
class AwsEndpoint:
    url: str
    region: str = "us-east-1"


@pytest.fixture(scope="session")
def actions_moto() -> Iterator[AwsEndpoint]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield AwsEndpoint(url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto(actions_moto: AwsEndpoint) -> AwsEndpoint:
    """An empty moto server for this test."""
    request = urllib.request.Request(f"{actions_moto.url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    return actions_moto


def boto_client(endpoint: AwsEndpoint, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def one_instance_group(endpoint: AwsEndpoint, name: str) -> str:
    """An Auto Scaling group of one instance in a fresh VPC (a node group's node): the instance's id."""
    ec2, asg = boto_client(endpoint, "ec2"), boto_client(endpoint, "autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    asg.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName="lc",
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet,
    )
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    instance_id: str = found["Instances"][0]["InstanceId"]
    return instance_id


@pytest.fixture
def aws_ctx(moto: AwsEndpoint) -> ActionContext:
    """A live (not dry-run) context whose AWS clients reach moto; no Kubernetes."""
    return make_ctx(aws=lambda service: boto_client(moto, service))


def make_ctx(
    *,
    aws: Callable[[str], Any] | None = None,
    k8s: Callable[[], Any] | None = None,
    case_id: str = CASE_ID,
    dry_run: bool = False,
) -> ActionContext:
    def no_aws(service: str) -> Any:
        raise AssertionError(f"this test gives the action no AWS client ({service})")

    def no_k8s() -> Any:
        raise AssertionError("this test gives the action no Kubernetes client")

    return ActionContext(case_id=case_id, aws=aws or no_aws, k8s=k8s or no_k8s, dry_run=dry_run)


def stubbed(service: str, region: str = "us-east-1") -> Any:
    """A boto3 client that never reaches a network, for botocore Stubber tests."""
    return boto3.client(
        service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
