"""Preflight for `--checkpoint`: may the kubelet checkpoint API be tried on the pod's node?

Why a preflight and not simply trying: the checkpoint (`POST /checkpoint/{namespace}/{pod}/{container}` on the
kubelet, reached through the API server's node proxy) pauses the container while CRIU dumps it and writes
every memory page to the node's disk; a responder should see beforehand whether it can work at all. The API
is beta and on by default since Kubernetes 1.30 (alpha, off by default, from 1.25: the `ContainerCheckpoint`
feature gate must then be on, which the kubelet's `/configz` shows); the runtime must implement the CRI
checkpoint call (containerd 2.0 and later, CRI-O; containerd 1.x answers that it is not implemented); and the
runtime needs CRIU, which the Kubernetes API cannot show. The stock EKS AMIs (AL2023, AL2, Bottlerocket) do
not install CRIU and containerd disables checkpointing without it, so on those the tier is offered only when
the node carries `eksir.io/criu=installed` (the operator's statement for a custom AMI, README "Node kinds");
on other images it is tried, and a kubelet 500 then fails only that step (the crictl/ctr capture runs
regardless). Read-only: node JSON plus one GET of `/configz` through the node proxy.
"""

from __future__ import annotations

import re

from eksir.errors import EksirError
from eksir.models.resolution import CheckpointPreflight, NodeCompute, NodeKind, NodeOs
from eksir.resolve.kube import JsonObj, KubeReader, meta, q, section, str_map
from eksir.resolve.notes import one_line

CRIU_LABEL = "eksir.io/criu"
FEATURE_GATE = "ContainerCheckpoint"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")
_STOCK_WITHOUT_CRIU = (NodeOs.AL2023, NodeOs.AL2, NodeOs.BOTTLEROCKET)


def checkpoint_preflight(kube: KubeReader, raw: JsonObj, kind: NodeKind) -> CheckpointPreflight:
    """Whether the checkpoint tier may run on node `raw`, with every reason; never raises."""
    name = str(meta(raw).get("name") or "")
    if kind.compute is NodeCompute.FARGATE:
        return CheckpointPreflight(available=False, reasons=("Fargate: no kubelet a customer can reach",))
    info = section(section(raw, "status"), "nodeInfo")
    blockers: list[str] = []
    reasons: list[str] = []
    _kubelet(kube, name, str(info.get("kubeletVersion") or ""), blockers, reasons)
    _runtime(str(info.get("containerRuntimeVersion") or ""), blockers, reasons)
    _criu(kind, str_map(meta(raw).get("labels")), blockers, reasons)
    return CheckpointPreflight(available=not blockers, reasons=tuple(blockers or reasons))


def _kubelet(kube: KubeReader, name: str, version: str, blockers: list[str], reasons: list[str]) -> None:
    """The API exists from 1.25 (alpha, gate off by default) and is on by default from 1.30 (beta)."""
    match = _VERSION.match(version)
    if match is None:
        blockers.append(f"kubelet version unknown ({version!r})")
        return
    minor = (int(match[1]), int(match[2]))
    if minor < (1, 25):
        blockers.append(f"kubelet {version} predates the checkpoint API (1.25)")
        return
    gate = _feature_gate(kube, name)
    if isinstance(gate, str):
        blockers.append(gate)
    elif gate is False or (gate is None and minor < (1, 30)):
        state = "off" if gate is False else "not on (alpha before 1.30, off by default)"
        blockers.append(f"feature gate {FEATURE_GATE} is {state} on kubelet {version}")
    else:
        reasons.append(f"kubelet {version}: {FEATURE_GATE} " + ("on" if gate else "on by default (beta)"))


def _feature_gate(kube: KubeReader, name: str) -> bool | str | None:
    """The gate from the kubelet's /configz (True/False/None when unset); a string says why it is unknown."""
    try:
        answer = kube.get(f"/api/v1/nodes/{q(name)}/proxy/configz", f"read kubelet configz of node {name}")
    except EksirError as exc:
        return f"kubelet of node {name} not reachable through the node proxy: {one_line(exc.message, 160)}"
    if answer is None:
        return f"kubelet of node {name} has no /configz"
    gates = section(section(answer, "kubeletconfig"), "featureGates")
    value = gates.get(FEATURE_GATE)
    return value if isinstance(value, bool) else None


def _runtime(runtime: str, blockers: list[str], reasons: list[str]) -> None:
    """containerd implements the CRI checkpoint from 2.0; CRI-O does (with CRIU support enabled)."""
    engine, _, version = runtime.partition("://")
    match = _VERSION.match(version)
    if engine == "containerd" and match is not None and int(match[1]) >= 2:
        reasons.append(f"runtime {runtime} implements the CRI checkpoint")
    elif engine == "cri-o":
        reasons.append(f"runtime {runtime} implements the CRI checkpoint (needs enable_criu_support)")
    else:
        blockers.append(f"runtime {runtime or 'unknown'} does not implement the CRI checkpoint")


def _criu(kind: NodeKind, labels: dict[str, str], blockers: list[str], reasons: list[str]) -> None:
    if labels.get(CRIU_LABEL) == "installed":
        reasons.append(f"node label {CRIU_LABEL}=installed: CRIU present")
    elif kind.os in _STOCK_WITHOUT_CRIU:
        blockers.append(
            f"{kind.os.value}: the stock EKS AMI does not install CRIU "
            f"(label the node {CRIU_LABEL}=installed if yours does)"
        )
    else:
        reasons.append(f"{kind.os.value}: CRIU cannot be seen through the API; the checkpoint will be tried")
