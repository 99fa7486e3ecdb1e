"""What the local lab cannot perform, with the reason a responder reads in the game day's summary.

Why here: only the lab knows its own limits (DESIGN.md, "Lab modes"); the game day hands this table to the
engine as its explicit lab-mode signal, and the product never consults it. An entry is in the table only
while no lab component performs the step: when `lab up` runs the attacked node's real containerd and the
lab's SSM agent stand-in (as root, with containerd installed), capture and pause are performed and verified
like any step; otherwise they are `unavailable-in-lab` with the reason the node stayed simulated (never
failed, never verified), and a step that succeeds anyway is simply verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

NODE_STEPS = ("ssm.capture_volatile", "ssm.pause_container")


def simulated_node_reason(why: str) -> str:
    """The reason recorded for a node step when the attacked node is simulated for `why`."""
    return (
        f"the lab's attacked node is simulated ({why}): no SSM agent runs there, so moto accepts the "
        "command but nothing captures or pauses on the node"
    )


def unavailable_in_lab(node_runtime_reason: str) -> Mapping[str, str]:
    """Action id -> why the lab cannot perform it; empty when the attacked node runs a real containerd.

    `node_runtime_reason` is lab.json's `node_runtime_reason` ("" when the node runtime is real).
    """
    if not node_runtime_reason:
        return MappingProxyType({})
    reason = simulated_node_reason(node_runtime_reason)
    return MappingProxyType(dict.fromkeys(NODE_STEPS, reason))


DOCTOR_UNAVAILABLE: Mapping[str, str] = MappingProxyType(
    {
        "networkpolicy enforcement": (
            "the lab runs no CNI and no network policy agent (no kubelets): NetworkPolicies are stored by "
            "the real kube-apiserver but nothing enforces them"
        ),
        "iam permissions": (
            "moto has no IAM SimulatePrincipalPolicy (the check is tested with botocore's Stubber against "
            "the real service model)"
        ),
        "ssm on nodes": (
            "moto keeps no SSM managed-instance registry for the lab's nodes (DescribeInstanceInformation; "
            "the check is tested with botocore's Stubber)"
        ),
    }
)
"""`eksir lab doctor`: check name -> why the lab cannot provide what it looks for (a check that passes
anyway simply passes)."""
