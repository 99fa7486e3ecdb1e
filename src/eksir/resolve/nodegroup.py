"""EKS managed node groups: which Auto Scaling group holds the node when Auto Scaling itself does not say.

Why: the playbook suspends the group's ReplaceUnhealthy/AZRebalance/HealthCheck and protects the instance
from scale-in, so it needs the group's name. DescribeAutoScalingInstances normally answers; when it cannot
(denied, throttled, the instance just detached), a managed node group still names its groups in
DescribeNodegroup (`resources.autoScalingGroups`), found from the node label `eks.amazonaws.com/nodegroup`
or the instance tag `eks:nodegroup-name` that EKS puts on every node of a managed group.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.aws import aws_call
from eksir.models.resolution import InstanceInfo, NodeInfo
from eksir.resolve.notes import optional


def with_nodegroup(
    eks: Any, cluster: str, node: NodeInfo, instance: InstanceInfo, notes: list[str]
) -> tuple[NodeInfo, InstanceInfo]:
    """The node and instance with the managed node group (and its Auto Scaling group) filled in."""
    group = node.nodegroup if node.labels.get("eks.amazonaws.com/nodegroup") else None
    group = group or instance.nodegroup
    if group is None:
        return node, instance
    if node.nodegroup is None:
        node = node.model_copy(update={"nodegroup": group})
    if instance.nodegroup is None:
        instance = instance.model_copy(update={"nodegroup": group})
    if instance.autoscaling_group is None:
        asg = optional(notes, lambda: _nodegroup_asg(eks, cluster, group))
        if asg:
            instance = instance.model_copy(update={"autoscaling_group": asg})
    return node, instance


def _nodegroup_asg(eks: Any, cluster: str, nodegroup: str) -> str | None:
    with aws_call(f"describe managed node group {nodegroup}"):
        found = eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup)
    groups = ((found.get("nodegroup") or {}).get("resources") or {}).get("autoScalingGroups") or []
    return next((str(g["name"]) for g in groups if g.get("name")), None)
