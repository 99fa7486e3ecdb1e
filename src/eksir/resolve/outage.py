"""What containment would take down, decided before anything changes.

Why: isolating the only ready replica of a service, or cutting off a node that carries the last replica of
another team's workload, turns a security incident into an outage. Each item names the action ids it concerns;
blocking items make the plan ask before those steps (see playbooks/privileged_container.py). The check is
read-only: replica counts come from the owners' status, PDBs from `status.disruptionsAllowed`, and spare
capacity of the node's other workloads from their ready replicas elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eksir.models.resolution import InstanceInfo, NodeInfo, OutageAssessment, OutageItem
from eksir.resolve.context import Ctx
from eksir.resolve.kube import JsonObj, meta, section
from eksir.resolve.notes import optional
from eksir.resolve.outage_pod import pod_items
from eksir.resolve.owners import Capacity, pod_is_ready, serving_capacity
from eksir.resolve.pod import FoundPod

CORDON_NODE = "k8s.cordon_node"
ISOLATE_INSTANCE = "ec2.isolate_instance"
TERMINATION_PROTECTION = "ec2.enable_termination_protection"
PROTECT_INSTANCE = "asg.protect_instance"
CAPTURE_VOLATILE = "ssm.capture_volatile"
_NODE_STEPS = (CORDON_NODE, ISOLATE_INSTANCE, TERMINATION_PROTECTION, PROTECT_INSTANCE, CAPTURE_VOLATILE)
_FINISHED = ("Succeeded", "Failed")


@dataclass
class _Workload:
    """Pods of one workload on the node, and the workload's ready replicas overall."""

    capacity: Capacity | None
    pods: list[str] = field(default_factory=list)
    ready_on_node: int = 0

    def has_spare(self) -> bool:
        if self.ready_on_node == 0:
            return True  # nothing ready here: losing the node costs it nothing
        return self.capacity is not None and (self.capacity.ready or 0) - self.ready_on_node >= 1


def assess_outage(
    ctx: Ctx, pod: FoundPod | None, node: NodeInfo | None, instance: InstanceInfo | None
) -> OutageAssessment:
    """The OutageAssessment for the pod, its node and instance; unreadable parts become notes."""
    items: list[OutageItem] = []
    capacity, allowed = None, None
    if pod is not None:
        capacity, allowed, found = pod_items(ctx, pod)
        items += found
    pods_on_node: tuple[str, ...] = ()
    if node is not None and node.fargate:
        items.append(_fargate_item(node))
    elif node is not None:
        answer = optional(ctx.notes, lambda: _node_items(ctx, node, pod))
        if answer is not None:
            pods_on_node, found = answer
            items += found
    if instance is not None:
        items += _instance_items(instance)
    return OutageAssessment(
        owner_replicas=capacity.desired if capacity else None,
        owner_ready_replicas=capacity.ready if capacity else None,
        pdb_disruptions_allowed=allowed,
        pods_on_node=pods_on_node,
        items=tuple(items),
    )


def _fargate_item(node: NodeInfo) -> OutageItem:
    return OutageItem(
        subject=f"node {node.name}",
        message=(
            "Fargate: the pod runs in its own micro-VM; there is no node to cordon and no instance to "
            "isolate, protect or capture from over SSM. Keep the pod spec and logs, then delete the pod."
        ),
        steps=_NODE_STEPS,
    )


def _node_items(
    ctx: Ctx, node: NodeInfo, suspect: FoundPod | None
) -> tuple[tuple[str, ...], list[OutageItem]]:
    """Items for cordoning and cutting off the node, from every other pod running on it."""
    found = ctx.kube.list(
        "/api/v1/pods", f"list pods on node {node.name}", field_selector=f"spec.nodeName={node.name}"
    )
    active = [p for p in found if section(p, "status").get("phase") not in _FINISHED]
    names = tuple(sorted(f"{meta(p).get('namespace')}/{meta(p).get('name')}" for p in active))
    suspect_uid = suspect.info.uid if suspect else None
    workloads, daemonsets = _group_by_workload(ctx, [p for p in active if meta(p).get("uid") != suspect_uid])
    subject = f"node {node.name}"
    cordon = "already cordoned" if node.unschedulable else "cordoning only stops new pods landing on it"
    items = [
        OutageItem(
            subject=subject,
            message=f"{cordon}; the {len(active)} pods running there keep running: cordon is safe",
            steps=(CORDON_NODE,),
        )
    ]
    exposed = sorted(key for key, w in workloads.items() if not w.has_spare())
    if exposed:
        items.append(
            OutageItem(
                subject=subject,
                message=(
                    "isolating the instance cuts off every pod on it (they share its ENIs), and draining or "
                    "terminating it later takes them down: these have no ready replica elsewhere: "
                    + "; ".join(f"{key} ({', '.join(workloads[key].pods)})" for key in exposed)
                ),
                blocking=True,
                steps=(ISOLATE_INSTANCE,),
            )
        )
    elif workloads:
        items.append(
            OutageItem(
                subject=subject,
                message=f"the {len(workloads)} other workloads on the node have ready replicas elsewhere",
                steps=(ISOLATE_INSTANCE,),
            )
        )
    if daemonsets:
        items.append(
            OutageItem(
                subject=subject,
                message=(
                    f"DaemonSet pods on the node ({', '.join(sorted(daemonsets))}): cordon does not evict "
                    "them; isolating the instance cuts them off too and the node goes NotReady, after which "
                    "its pods are evicted (about 5 minutes) and replaced elsewhere"
                ),
                steps=(CORDON_NODE, ISOLATE_INSTANCE),
            )
        )
    return names, items


def _group_by_workload(ctx: Ctx, pods: list[JsonObj]) -> tuple[dict[str, _Workload], set[str]]:
    workloads: dict[str, _Workload] = {}
    daemonsets: set[str] = set()
    for pod in pods:
        namespace, name = str(meta(pod).get("namespace")), str(meta(pod).get("name"))
        chain = ctx.owners.chain(namespace, pod)
        kinds = {link.ref.kind: link.ref.name for link in chain}
        if "DaemonSet" in kinds:
            daemonsets.add(f"{namespace}/{kinds['DaemonSet']}")
            continue
        capacity = serving_capacity(namespace, chain)
        if "Node" in kinds:
            key = f"static pod {namespace}/{name}"
        else:
            key = capacity.key if capacity else f"Pod {namespace}/{name} (no controller)"
        workload = workloads.setdefault(key, _Workload(capacity))
        workload.pods.append(f"{namespace}/{name}")
        workload.ready_on_node += 1 if pod_is_ready(pod) else 0
    return workloads, daemonsets


def _instance_items(instance: InstanceInfo) -> list[OutageItem]:
    subject = f"instance {instance.instance_id}"
    items: list[OutageItem] = []
    if instance.spot:
        items.append(
            OutageItem(
                subject=subject,
                message=(
                    "Spot instance: termination protection cannot be enabled and scale-in protection does "
                    "not stop an interruption; it can be reclaimed with 2 minutes' notice, so capture "
                    "volatile evidence and snapshot the volumes first"
                ),
                steps=(TERMINATION_PROTECTION, PROTECT_INSTANCE, CAPTURE_VOLATILE),
            )
        )
    elif instance.termination_protected:
        items.append(
            OutageItem(
                subject=subject,
                message="termination protection is already on: a rollback must leave it on",
                steps=(TERMINATION_PROTECTION,),
            )
        )
    if instance.state not in (None, "running"):
        items.append(
            OutageItem(
                subject=subject,
                message=f"the instance is {instance.state}: SSM capture and isolation may not be possible",
                steps=(CAPTURE_VOLATILE, ISOLATE_INSTANCE),
            )
        )
    return items
