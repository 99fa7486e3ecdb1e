"""The EC2 instance behind a node: what isolation, snapshots and protection will act on.

Why each field: ENIs with their security groups are what `ec2.isolate_instance` replaces and must restore;
EBS volume ids are what gets snapshotted; the instance profile is the node role an attacker on a privileged
pod can steal through IMDS; Spot instances cannot get termination protection and may be reclaimed with two
minutes' notice; the Auto Scaling group may replace the instance unless it is protected or detached; the
Operator says whether EKS runs it as an Auto Mode managed instance (node_kind.py checks the node's claim).
DescribeInstances is required; the attribute and ASG lookups only enrich and degrade to notes.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError
from eksir.models.resolution import InstanceInfo, NetworkInterfaceInfo
from eksir.resolve.notes import optional

_ASG_TAG = "aws:autoscaling:groupName"


def describe_instance(ec2: Any, autoscaling: Any, instance_id: str, notes: list[str]) -> InstanceInfo | None:
    """DescribeInstances (+ termination attribute, + ASG) -> InstanceInfo; None, noted, when unknown.

    Raises PermissionDeniedError, UnreachableError or TemporaryError when DescribeInstances fails.
    """
    try:
        with aws_call(f"describe EC2 instance {instance_id}"):
            reservations = ec2.describe_instances(InstanceIds=[instance_id]).get("Reservations") or []
    except NotFoundError:
        reservations = []
    raw = next((i for r in reservations for i in r.get("Instances") or []), None)
    if raw is None:
        notes.append(
            f"EC2 instance {instance_id} does not exist (terminated long ago, or another account/region)"
        )
        return None
    state = (raw.get("State") or {}).get("Name")
    if state in ("terminated", "shutting-down"):
        notes.append(f"EC2 instance {instance_id} is {state}: its volatile evidence is lost")
    asg = optional(notes, lambda: _autoscaling_group(autoscaling, instance_id)) or _tag(raw, _ASG_TAG)
    return InstanceInfo(
        instance_id=instance_id,
        state=state,
        spot=raw.get("InstanceLifecycle") == "spot",
        autoscaling_group=asg,
        vpc_id=raw.get("VpcId"),
        subnet_id=raw.get("SubnetId"),
        private_dns_name=raw.get("PrivateDnsName") or None,
        network_interfaces=tuple(
            NetworkInterfaceInfo(
                eni_id=str(eni["NetworkInterfaceId"]),
                security_group_ids=tuple(
                    str(g["GroupId"]) for g in eni.get("Groups") or [] if g.get("GroupId")
                ),
                private_ips=tuple(
                    str(a["PrivateIpAddress"])
                    for a in eni.get("PrivateIpAddresses") or []
                    if a.get("PrivateIpAddress")
                )
                or ((str(eni["PrivateIpAddress"]),) if eni.get("PrivateIpAddress") else ()),
            )
            for eni in raw.get("NetworkInterfaces") or []
            if eni.get("NetworkInterfaceId")
        ),
        volume_ids=tuple(
            str(bdm["Ebs"]["VolumeId"])
            for bdm in raw.get("BlockDeviceMappings") or []
            if (bdm.get("Ebs") or {}).get("VolumeId")
        ),
        iam_instance_profile_arn=(raw.get("IamInstanceProfile") or {}).get("Arn"),
        termination_protected=optional(notes, lambda: _termination_protected(ec2, instance_id)),
        managed_by=_managed_by(raw),
    )


def _managed_by(raw: dict[str, Any]) -> str | None:
    """The service operating a managed instance (EKS for Auto Mode); "" when not managed; None unknown."""
    operator = raw.get("Operator")
    if not isinstance(operator, dict) or "Managed" not in operator:
        return None
    return str(operator.get("Principal") or "") if operator.get("Managed") else ""


def _termination_protected(ec2: Any, instance_id: str) -> bool:
    with aws_call(f"read disableApiTermination of {instance_id}"):
        answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    return bool((answer.get("DisableApiTermination") or {}).get("Value"))


def _autoscaling_group(autoscaling: Any, instance_id: str) -> str | None:
    with aws_call(f"find the Auto Scaling group of {instance_id}"):
        answer = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
    groups = [i.get("AutoScalingGroupName") for i in answer.get("AutoScalingInstances") or []]
    return next((str(g) for g in groups if g), None)


def _tag(raw: dict[str, Any], key: str) -> str | None:
    return next(
        (str(t["Value"]) for t in raw.get("Tags") or [] if t.get("Key") == key and t.get("Value")), None
    )
