"""Nodes of every kind for the lab's kube-apiserver: the labels, providerID and osImage each kind carries.

Where each value comes from: `eks.amazonaws.com/compute-type` (`auto`, `fargate`, `hybrid`) and the Auto Mode
NodeClass label `eks.amazonaws.com/nodeclass` with `karpenter.sh/nodepool` from the EKS user guide (Auto Mode
workloads select `compute-type: auto`); `eks-hybrid:///<region>/<cluster>/<node>` from nodeadm (the EKS AMI
repository's hybrid kubelet configuration); `aws:///<az>/<instance>` from the AWS cloud provider; the osImage
strings from what the kubelet reports on each AMI ("Bottlerocket OS 1.x (aws-k8s-1.y)", "Amazon Linux 2023.x",
"Amazon Linux 2"). The Auto Mode osImage below is illustrative: detection does not rely on it.
No kubelet runs in the lab, so the status a kubelet would report is written through the status subresource.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

ZONE = "us-east-1a"
AUTO_MODE_OS = "Bottlerocket (EKS Auto) 2025.4.26 (aws-k8s-1.32)"
BOTTLEROCKET_OS = "Bottlerocket OS 1.20.3 (aws-k8s-1.30)"
AL2023_OS = "Amazon Linux 2023.6.20241212"
AL2_OS = "Amazon Linux 2"


def node_info(
    os_image: str, kubelet: str = "v1.30.4-eks-a737599", runtime: str = "containerd://1.7.22"
) -> dict[str, str]:
    """Every field of NodeSystemInfo (the client's model requires them all)."""
    return {
        "machineID": "ec2a3d6f0c7e4b0f9c8d7e6f5a4b3c2d",
        "systemUUID": "ec2a3d6f-0c7e-4b0f-9c8d-7e6f5a4b3c2d",
        "bootID": "0f4f3c9e-1b2a-4c3d-8e7f-6a5b4c3d2e1f",
        "kernelVersion": "6.1.115",
        "osImage": os_image,
        "containerRuntimeVersion": runtime,
        "kubeletVersion": kubelet,
        "kubeProxyVersion": kubelet,
        "operatingSystem": "linux",
        "architecture": "amd64",
    }


def create_node(
    api: Any,
    name: str,
    labels: dict[str, str],
    provider_id: str | None,
    os_image: str,
    *,
    status: dict[str, Any] | None = None,
    **info: str,
) -> dict[str, Any]:
    """Create the node, then write the status a kubelet would (nodeInfo, plus `status` extras)."""
    core = client.CoreV1Api(api)
    spec = {"providerID": provider_id} if provider_id else {}
    body = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}}, "spec": spec}
    core.create_node(body)
    core.patch_node_status(name, {"status": {"nodeInfo": node_info(os_image, **info), **(status or {})}})
    return dict(api.sanitize_for_serialization(core.read_node(name)))


def auto_mode_labels() -> dict[str, str]:
    return {
        "eks.amazonaws.com/compute-type": "auto",
        "karpenter.sh/nodepool": "general-purpose",
        "eks.amazonaws.com/nodeclass": "default",
        "karpenter.sh/capacity-type": "on-demand",
        "topology.kubernetes.io/zone": ZONE,
    }


def managed_labels() -> dict[str, str]:
    return {
        "eks.amazonaws.com/nodegroup": "ng-general",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "topology.kubernetes.io/zone": ZONE,
    }
