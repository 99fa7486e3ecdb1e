"""The node the pod runs on: its EC2 instance id, node group, capacity type and zone, or Fargate.

Why the providerID: EKS (and every cloud provider) writes `aws:///<az>/<instance-id>` on EC2 nodes; it is
the only link from a Kubernetes node to the instance a responder isolates, snapshots and protects. Fargate
nodes (`fargate-ip-...`, label `eks.amazonaws.com/compute-type: fargate`) have no instance a customer can
touch, which the plan must say instead of failing. Karpenter nodes carry `karpenter.sh/...` labels instead of
the managed node group ones; both are read.
"""

from __future__ import annotations

import re

from eksir.models.resolution import NodeCompute, NodeInfo
from eksir.resolve.kube import JsonObj, KubeReader, meta, q, section, str_map
from eksir.resolve.node_kind import detect_node_kind

_PROVIDER_ID = re.compile(r"^aws:///(?P<az>[^/]*)/(?P<instance>i-[0-9a-f]+)$")
_NODEGROUP = "eks.amazonaws.com/nodegroup"
_CAPACITY = ("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type")
_ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")


def find_node(
    kube: KubeReader, name: str, notes: list[str], cluster_auto_mode: bool | None = None
) -> tuple[NodeInfo, JsonObj] | None:
    """Read node `name`; None, with a note, when it is gone (scaled in, reclaimed, replaced).

    Raises UnreachableError, PermissionDeniedError or TemporaryError from the API server.
    """
    raw = kube.get(f"/api/v1/nodes/{q(name)}", f"read node {name}")
    if raw is None:
        notes.append(f"node {name} no longer exists (scaled in, Spot reclaim or replaced): no node to cordon")
        return None
    return node_info(raw, cluster_auto_mode), raw


def node_info(raw: JsonObj, cluster_auto_mode: bool | None = None) -> NodeInfo:
    """NodeInfo from a node's JSON, with its kind (resolve/node_kind.py)."""
    metadata, spec = meta(raw), section(raw, "spec")
    name = str(metadata.get("name") or "")
    labels = str_map(metadata.get("labels"))
    provider_id = spec.get("providerID") if isinstance(spec.get("providerID"), str) else None
    match = _PROVIDER_ID.match(provider_id or "")
    kind = detect_node_kind(raw, cluster_auto_mode)
    fargate = kind.compute is NodeCompute.FARGATE
    no_instance = fargate or kind.compute is NodeCompute.HYBRID
    capacity = next((labels[key] for key in _CAPACITY if labels.get(key)), None)
    zone = next((labels[key] for key in _ZONE if labels.get(key)), None)
    return NodeInfo(
        name=name,
        provider_id=provider_id,
        instance_id=None if no_instance or match is None else match["instance"],
        availability_zone=zone or (match["az"] if match and match["az"] else None),
        nodegroup=labels.get(_NODEGROUP) or labels.get("karpenter.sh/nodepool"),
        capacity_type=capacity.upper().replace("-", "_") if capacity else None,
        fargate=fargate,
        unschedulable=bool(spec.get("unschedulable")),
        labels=labels,
        kind=kind,
    )
