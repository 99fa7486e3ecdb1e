"""Online resolution: from a GuardDuty finding to the live objects containment will act on.

finding -> cluster (DescribeCluster) -> pod (by uid) -> owners -> node -> EC2 instance -> Auto Scaling group,
the actor -> IAM principal and every mapping that admits it, and an outage assessment, all read-only.

Why one entry point with injected factories: the CLI, the engine and the tests build clients differently
(profile/role, lab endpoints, Stubbers); `aws(service)` returns a boto3 client and `k8s()` an ApiClient, built
only when needed (after DescribeCluster, which tells the caller the endpoint). What cannot be found is a
warning in the Resolution, not an exception, unless nothing useful can be resolved: no cluster name
(BadInputError), DescribeCluster failing (NotFoundError/PermissionDeniedError/UnreachableError), or the API
server being unreachable (UnreachableError, one line naming the server).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eksir.errors import UnreachableError
from eksir.models.finding import Finding
from eksir.models.resolution import InstanceInfo, NodeCompute, NodeInfo, Resolution
from eksir.resolve.checkpoint import checkpoint_preflight
from eksir.resolve.cluster import cluster_name, describe_cluster
from eksir.resolve.context import AwsFactory, Ctx
from eksir.resolve.identity import resolve_actor, service_account_roles
from eksir.resolve.instance import describe_instance
from eksir.resolve.kube import KubeReader
from eksir.resolve.node import find_node
from eksir.resolve.node_identities import node_service_accounts, role_users
from eksir.resolve.node_kind import corroborate_auto_mode
from eksir.resolve.nodegroup import with_nodegroup
from eksir.resolve.outage import assess_outage
from eksir.resolve.owners import OwnerCache
from eksir.resolve.pod import FoundPod, find_pod, find_pod_by_container

__all__ = ["resolve"]


def resolve(
    finding: Finding,
    aws: AwsFactory,
    k8s: Callable[[], Any],
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    checkpoint: bool = False,
) -> Resolution:
    """Resolve the finding against the live cluster and account (read-only); `checkpoint` adds the kubelet
    checkpoint preflight for the pod's node (`--checkpoint`, resolve/checkpoint.py).

    Raises BadInputError (the finding names no cluster), NotFoundError / PermissionDeniedError /
    TemporaryError (DescribeCluster or a required read failed), UnreachableError (AWS or the API server).
    """
    name = cluster_name(finding)
    cluster = describe_cluster(aws("eks"), name)
    api_client = k8s()
    kube = KubeReader(api_client)
    ctx = Ctx(aws=aws, kube=kube, cluster=cluster, owners=OwnerCache(kube), checkpoint=checkpoint)
    if cluster.audit_logging_enabled is False:
        ctx.notes.append(
            f"audit logging is off on cluster {name}: the hunt cannot use the EKS audit log for the past; "
            "enable it now (eks update-cluster-config --logging) so it records from here on"
        )
    try:
        return _resolve(ctx, finding, now)
    except UnreachableError as exc:
        host = getattr(getattr(api_client, "configuration", None), "host", None) or "(unknown)"
        if "Kubernetes API server" not in exc.message:
            raise
        raise UnreachableError(
            f"cluster {name}: the Kubernetes API server {host} is unreachable ({exc.message}); check the "
            "network path to the endpoint (private endpoint, VPN, security group)"
        ) from exc


def _resolve(ctx: Ctx, finding: Finding, now: Callable[[], datetime]) -> Resolution:
    found = _find_pod(ctx, finding)
    node, instance = _node_and_instance(ctx, found)
    pod = None
    if found is not None:
        roles = service_account_roles(ctx, found.info.namespace, found.info.service_account or "default")
        pod = found.info.model_copy(update={"aws_roles": roles})
    actor = resolve_actor(ctx, finding)
    outage = assess_outage(ctx, found, node, instance)
    accounts = node_service_accounts(ctx, node.name) if node is not None and not node.fargate else ()
    return Resolution(
        resolved_at=now(),
        cluster=ctx.cluster,
        pod=pod,
        node=node,
        instance=instance,
        actor=actor,
        outage=outage,
        node_service_accounts=accounts,
        role_users=role_users(ctx, accounts),
        warnings=tuple(dict.fromkeys(ctx.notes)),
    )


def _find_pod(ctx: Ctx, finding: Finding) -> FoundPod | None:
    """By the finding's workload; for a runtime finding that names no pod, by its container's runtime id."""
    workload, container = finding.workload, finding.container
    if (workload is None or not (workload.name or workload.uid)) and container is not None and container.id:
        return find_pod_by_container(ctx.kube, ctx.owners, container.id, ctx.notes)
    return find_pod(ctx.kube, ctx.owners, workload, ctx.notes)


def _node_and_instance(ctx: Ctx, found: FoundPod | None) -> tuple[NodeInfo | None, InstanceInfo | None]:
    if found is None:
        return None, None
    if not found.info.node_name:
        ctx.notes.append(f"pod {found.info.namespace}/{found.info.name} is not scheduled to a node")
        return None, None
    node_found = find_node(ctx.kube, found.info.node_name, ctx.notes, ctx.cluster.auto_mode)
    if node_found is None:
        return None, None
    node = node_found[0]
    if ctx.checkpoint and node.kind is not None:
        preflight = checkpoint_preflight(ctx.kube, node_found[1], node.kind)
        node = node.model_copy(update={"checkpoint": preflight})
    if node.fargate or node.instance_id is None:
        if not node.fargate and not (node.kind and node.kind.compute is NodeCompute.HYBRID):
            ctx.notes.append(
                f"node {node.name} has no EC2 providerID ({node.provider_id!r}): instance unknown"
            )
        return node, None
    instance = describe_instance(ctx.aws("ec2"), ctx.aws("autoscaling"), node.instance_id, ctx.notes)
    if instance is None:
        return node, None
    if node.kind is not None:
        node = node.model_copy(update={"kind": corroborate_auto_mode(node.kind, instance.managed_by)})
    return with_nodegroup(ctx.aws("eks"), ctx.cluster.name, node, instance, ctx.notes)
