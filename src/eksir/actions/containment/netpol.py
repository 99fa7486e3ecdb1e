"""NetworkPolicy facts the pod isolation depends on: label-selector evaluation and CNI enforcement.

Why evaluate selectors ourselves: the API server never says which pods a NetworkPolicy selects (the CNI does
that), yet isolation is only real when our deny-all selects exactly the suspect pod and no allow policy
selects it too (policies are additive). Why look at the CNI: a NetworkPolicy that no agent enforces is an
object in etcd and nothing else, and a responder must be told that plainly instead of trusting it.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import apps
from eksir.errors import EksirError

NOT_ENFORCED = "NetworkPolicy is not enforced by any CNI found; isolation is not effective"


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """Kubernetes LabelSelector semantics: matchLabels AND every matchExpression; `{}` selects everything.

    A None selector selects nothing (API convention for an absent selector in most places; a NetworkPolicy's
    podSelector is required, so it is never None there).
    """
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def admits_traffic(policy: dict[str, Any]) -> bool:
    """True when a policy has at least one ingress or egress rule, i.e. it allows something."""
    spec = policy.get("spec") or {}
    return bool(spec.get("ingress")) or bool(spec.get("egress"))


def _container_signals(container: dict[str, Any]) -> bool:
    """True when an aws-node container runs the VPC CNI network policy agent or has policy enabled."""
    args = " ".join(container.get("args") or [])
    if container.get("name") == "aws-network-policy-agent" and "--enable-network-policy=true" in args:
        return True
    env = {e.get("name"): str(e.get("value", "")).lower() for e in container.get("env") or []}
    return env.get("ENABLE_NETWORK_POLICY") == "true"


def enforcing_cnis(api_client: Any) -> list[str]:
    """Names of the NetworkPolicy-enforcing CNI DaemonSets found in kube-system (may be empty).

    Raises PermissionDeniedError / UnreachableError (via k8s_call) when DaemonSets cannot be listed.
    """
    with k8s_call("list DaemonSets in kube-system to find the CNI"):
        daemonsets = apps(api_client).list_namespaced_daemon_set("kube-system")
    found = []
    for ds in api_client.sanitize_for_serialization(daemonsets).get("items", []):
        name = ds["metadata"]["name"]
        containers = ds.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        if name == "aws-node" and any(_container_signals(c) for c in containers):
            found.append("aws-node (VPC CNI network policy agent)")
        elif name in ("calico-node", "cilium"):
            found.append(name)
    return found


def cni_warnings(api_client: Any) -> list[str]:
    """The plain warning when nothing enforces NetworkPolicy, or why we could not tell; [] when enforced."""
    try:
        found = enforcing_cnis(api_client)
    except EksirError as exc:
        return [
            f"could not check which CNI enforces NetworkPolicy ({exc.message}); isolation may not be "
            "effective"
        ]
    return [] if found else [NOT_ENFORCED]
