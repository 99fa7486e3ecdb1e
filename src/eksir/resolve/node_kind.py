"""Which kind of node a pod runs on: Auto Mode, Fargate, hybrid or an ordinary EC2 node, and its OS.

Why it matters: the kind decides which steps can work at all. On EKS Auto Mode the instance is an EC2
managed instance owned by EKS: SSH and SSM are disallowed and no principal, not even the account root, can
change its ENIs or instance profile, so neither SSM capture nor a security-group swap can work (the
`NodeDiagnostic` resource collects a log bundle instead). A Fargate pod has no node a customer can touch. A
hybrid node is the customer's own machine outside AWS: there is no EC2 instance. On Bottlerocket SSM lands in
the control container, so capture goes through the admin container.

Why several signals and not one: each can be missing or copied. Labels are set by the node's provisioner
(`eks.amazonaws.com/compute-type` = `auto` / `fargate` / `hybrid`, `eks.amazonaws.com/nodegroup`,
`karpenter.sh/nodepool` with Auto Mode's `eks.amazonaws.com/nodeclass`), the providerID by the cloud
provider or nodeadm (`aws:///<az>/i-...` on EC2, `eks-hybrid:///<region>/<cluster>/<node>` on hybrid nodes),
the OS by the kubelet (`status.nodeInfo.osImage`), and DescribeCluster's `computeConfig.enabled` says
whether the cluster runs Auto Mode at all. Each signal that decided is kept in `NodeKind.signals`, so the
plan and the case say why a step was left out. Pure: the node's JSON and the cluster flag in, a NodeKind out.
"""

from __future__ import annotations

import re

from eksir.models.resolution import NodeCompute, NodeKind, NodeOs
from eksir.resolve.kube import JsonObj, meta, section, str_map

COMPUTE_TYPE = "eks.amazonaws.com/compute-type"
NODEGROUP = "eks.amazonaws.com/nodegroup"
NODEPOOL = "karpenter.sh/nodepool"
AUTO_NODECLASS = "eks.amazonaws.com/nodeclass"
KARPENTER_NODECLASS = "karpenter.k8s.aws/ec2nodeclass"
HYBRID_PROVIDER = "eks-hybrid:///"
_EC2_INSTANCE = re.compile(r"^aws:///[^/]*/i-[0-9a-f]+$")
_MAX_TEXT = 200
_COMPUTE_LABELS = {
    "auto": NodeCompute.AUTO_MODE,
    "fargate": NodeCompute.FARGATE,
    "hybrid": NodeCompute.HYBRID,
}
_OS_PREFIXES = (
    ("bottlerocket", NodeOs.BOTTLEROCKET),
    ("amazon linux 2023", NodeOs.AL2023),
    ("amazon linux 2", NodeOs.AL2),
    ("windows", NodeOs.WINDOWS),
)


def detect_node_kind(raw: JsonObj, cluster_auto_mode: bool | None = None) -> NodeKind:
    """The node's kind from its JSON (labels, providerID, name, osImage) and the cluster's Auto Mode flag."""
    labels = str_map(meta(raw).get("labels"))
    name = str(meta(raw).get("name") or "")
    provider_id = section(raw, "spec").get("providerID")
    provider = provider_id if isinstance(provider_id, str) else ""
    os_image = section(section(raw, "status"), "nodeInfo").get("osImage")
    image = _short(os_image) if isinstance(os_image, str) and os_image else None
    compute, signals = _compute(labels, name, provider, cluster_auto_mode)
    os_kind = _os(image)
    if image:
        signals.append(f"status.nodeInfo.osImage={image!r}")
    return NodeKind(
        compute=compute,
        os=os_kind,
        os_image=image,
        provisioner=_provisioner(compute, labels),
        signals=tuple(signals),
    )


def _compute(
    labels: dict[str, str], name: str, provider: str, auto_mode: bool | None
) -> tuple[NodeCompute, list[str]]:
    """Labels first (set by EKS itself), then the providerID and name, then Auto Mode's NodeClass; then a
    claim the immutable facts contradict is distrusted (`_distrust`)."""
    signals: list[str] = []
    labelled = _COMPUTE_LABELS.get(labels.get(COMPUTE_TYPE, ""))
    if labelled is not None:
        signals.append(f"label {COMPUTE_TYPE}={_short(labels[COMPUTE_TYPE])}")
    if provider.startswith(HYBRID_PROVIDER):
        signals.append(f"providerID {_short(provider)!r} (nodeadm's hybrid prefix)")
        labelled = labelled or NodeCompute.HYBRID
    if name.startswith("fargate-"):
        signals.append(f"node name {_short(name)!r} (Fargate's fargate-ip-... naming)")
        labelled = labelled or NodeCompute.FARGATE
    if labels.get(NODEPOOL) and labels.get(AUTO_NODECLASS):
        signals.append(f"labels {NODEPOOL} with {AUTO_NODECLASS} (an Auto Mode NodeClass)")
        labelled = labelled or NodeCompute.AUTO_MODE
    if auto_mode is not None:
        enabled = "enabled" if auto_mode else "not enabled"
        signals.append(f"DescribeCluster computeConfig: Auto Mode {enabled} on the cluster")
    if labelled is not None:
        labelled = _distrust(labelled, provider, auto_mode, signals)
    if labelled is None and provider.startswith("aws:///"):
        signals.append(f"providerID {_short(provider)!r} (an EC2 instance)")
    return labelled or NodeCompute.EC2, signals


def _distrust(
    claimed: NodeCompute, provider: str, auto_mode: bool | None, signals: list[str]
) -> NodeCompute | None:
    """None (an EC2 node) when the claim contradicts what a node cannot change about itself.

    Why: a kubelet may set `eks.amazonaws.com/*` labels on its own node (NodeRestriction forbids only the
    kubernetes.io prefixes), so an attacker on the node could relabel it Fargate or Auto Mode and make the
    plan leave out its capture and isolation. The providerID cannot be changed once set, and Auto Mode is a
    cluster setting: a Fargate or hybrid label on a node whose providerID names an EC2 instance, or an Auto
    Mode label where DescribeCluster says Auto Mode is off, is a lie and the node is planned as EC2.
    """
    ec2_instance = _EC2_INSTANCE.match(provider) is not None
    if claimed in (NodeCompute.FARGATE, NodeCompute.HYBRID) and ec2_instance:
        signals.append(
            f"DISTRUSTED: {claimed.value} is claimed but the providerID (immutable) names an EC2 instance: "
            "planned as EC2 (a node can relabel itself)"
        )
        return None
    if claimed is NodeCompute.AUTO_MODE and auto_mode is False:
        signals.append(
            "DISTRUSTED: Auto Mode is claimed but DescribeCluster says it is not enabled: planned as EC2 "
            "(a node can relabel itself)"
        )
        return None
    return claimed


def corroborate_auto_mode(kind: NodeKind, managed_by: str | None) -> NodeKind:
    """Check an Auto Mode claim against DescribeInstances' Operator: an instance EC2 reports as not managed
    is no Auto Mode node, whatever its labels say (planned as EC2, with the reason); unknown (None) or
    managed by EKS keeps the claim, with the signal."""
    if kind.compute is not NodeCompute.AUTO_MODE or managed_by is None:
        return kind
    if "eks" in managed_by:
        return kind.model_copy(update={"signals": (*kind.signals, f"EC2 Operator: managed by {managed_by}")})
    why = f"managed by {_short(managed_by)}" if managed_by else "not a managed instance"
    signal = f"DISTRUSTED: Auto Mode is claimed but EC2 says the instance is {why}: planned as EC2"
    return kind.model_copy(
        update={"compute": NodeCompute.EC2, "provisioner": None, "signals": (*kind.signals, signal)}
    )


def _short(text: str) -> str:
    """Node-reported text (a compromised node can write it) bounded for the plan's notes."""
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _os(image: str | None) -> NodeOs:
    if not image:
        return NodeOs.UNKNOWN
    lowered = image.lower()
    return next((kind for prefix, kind in _OS_PREFIXES if lowered.startswith(prefix)), NodeOs.OTHER)


def _provisioner(compute: NodeCompute, labels: dict[str, str]) -> str | None:
    if compute is not NodeCompute.EC2:
        return compute.value
    if labels.get(NODEGROUP):
        return "managed-node-group"
    if labels.get(NODEPOOL) or labels.get(KARPENTER_NODECLASS):
        return "karpenter"
    return None


def describe_kind(kind: NodeKind) -> str:
    """One line for plans and reports: `auto-mode (bottlerocket)`."""
    return f"{kind.compute.value} ({kind.os.value})"
