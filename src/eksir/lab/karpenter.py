"""A minimal Karpenter NodeClaim CRD of the lab's own, and the NodeClaim of the attacked node.

Why: Karpenter itself cannot run here (no cloud provider behind moto), but eksir must prove it marks the
NodeClaim behind the attacked node `karpenter.sh/do-not-disrupt`. The CRD below is not Karpenter's: it keeps
only the group, version, kind and the status fields eksir reads (`nodeName`, `providerID`), and preserves
everything else unvalidated. The lab writes the NodeClaim's status as Karpenter's controller would.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from eksir.errors import LabError
from eksir.lab.aws_seed import NodeInstance

GROUP, VERSION, PLURAL = "karpenter.sh", "v1", "nodeclaims"
NODEPOOL = "default"


def _crd() -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"eksir.io/lab": "minimal-karpenter-crd"}},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "plural": PLURAL,
                "singular": "nodeclaim",
                "kind": "NodeClaim",
                "listKind": "NodeClaimList",
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def install_nodeclaim_crd(api: ApiClient, timeout: float = 30.0) -> None:
    """Create the CRD (if absent) and wait until it is Established. Raises LabError when it never is."""
    extensions = client.ApiextensionsV1Api(api)
    try:
        extensions.create_custom_resource_definition(_crd())
    except client.ApiException as exc:
        if exc.status != 409:  # already there (a test control plane shared by several modules)
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise LabError(f"the lab's NodeClaim CRD was not established within {timeout:.0f}s")


def seed_nodeclaim(api: ApiClient, node: NodeInstance) -> str:
    """The NodeClaim that launched `node`, with the status Karpenter writes; returns its name."""
    custom = client.CustomObjectsApi(api)
    name = f"{NODEPOOL}-{node.instance_id[-5:]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": NODEPOOL}},
        "spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODEPOOL},
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [node.instance_type]}
            ],
        },
    }
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    status = {"status": {"nodeName": node.private_dns, "providerID": node.provider_id, "imageID": "ami-lab"}}
    custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, name, status)
    return name
