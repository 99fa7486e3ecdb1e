"""NetworkPolicy facts the pod isolation depends on: label-selector evaluation and CNI enforcement.

Why evaluate selectors ourselves: the API server never says which pods a NetworkPolicy selects (the CNI does
that), yet isolation is only real when our deny-all selects exactly the suspect pod and no allow policy
selects it too (policies are additive). Why look at the CNI: a NetworkPolicy that no agent enforces is an
object in etcd and nothing else, and a responder must be told that plainly instead of trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import apps
from eksir.errors import EksirError

NOT_ENFORCED = "NetworkPolicy is not enforced by any CNI found; isolation is not effective"
NOT_EFFECTIVE_PREFIX = "isolation will not be effective: "
"""How pod isolation's check and plan warnings begin when the change would contain nothing (the CLI shows
them as NOT EFFECTIVE in the plan)."""


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


VPC_CNI = "aws-node (VPC CNI network policy agent)"
POLICY_AGENTS = ("aws-eks-nodeagent", "aws-network-policy-agent")
"""The VPC CNI's policy agent container: `aws-eks-nodeagent` in the EKS add-on and current manifests;
`aws-network-policy-agent` is the project's name and was used by early manifests."""
CNI_NAMESPACES = ("kube-system", "calico-system", "cilium")
"""Where CNI DaemonSets live: kube-system (VPC CNI, Calico's AWS manifest, Cilium's default), calico-system
(the Tigera operator's Calico), cilium (some Helm installs)."""
STANDALONE = (
    "standalone pod (no metadata.ownerReferences): the VPC CNI does not apply network policies to it "
    "(EKS user guide, cni-network-policy); isolate the node instead"
)
HOST_NETWORK = "the pod uses the host network: NetworkPolicy never applies to it; isolate the node instead"
FARGATE = "Fargate pod: VPC CNI network policies are not applied on Fargate; use a pod security group"


@dataclass(frozen=True)
class CniSurvey:
    """What the CNI DaemonSets say: who enforces NetworkPolicy, and whether the VPC CNI is present."""

    enforcing: tuple[str, ...]
    vpc_cni: bool

    @property
    def only_vpc_cni(self) -> bool:
        """The VPC CNI is the only possible enforcer (no Calico or Cilium): its limits apply."""
        return self.vpc_cni and all(name == VPC_CNI for name in self.enforcing)


def _vpc_cni_enforces(containers: list[dict[str, Any]]) -> bool:
    """True when aws-node runs the policy agent with `--enable-network-policy=true` (EKS user guide,
    cni-network-policy-configure: the add-on's enableNetworkPolicy sets exactly this argument)."""
    for container in containers:
        words = [*(container.get("command") or []), *(container.get("args") or [])]
        if container.get("name") in POLICY_AGENTS and "--enable-network-policy=true" in words:
            return True
    return False


def survey_cnis(api_client: Any) -> CniSurvey:
    """List the CNI DaemonSets in CNI_NAMESPACES. Raises PermissionDeniedError / UnreachableError."""
    found: list[str] = []
    vpc_cni = False
    for namespace in CNI_NAMESPACES:
        with k8s_call(f"list DaemonSets in {namespace} to find the CNI"):
            daemonsets = apps(api_client).list_namespaced_daemon_set(namespace)
        for ds in api_client.sanitize_for_serialization(daemonsets).get("items", []):
            name = ds["metadata"]["name"]
            containers = ds.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            if name == "aws-node":
                vpc_cni = True
                if _vpc_cni_enforces(containers):
                    found.append(VPC_CNI)
            elif name in ("calico-node", "cilium"):
                found.append(f"{name} ({namespace})")
    return CniSurvey(tuple(dict.fromkeys(found)), vpc_cni)


def enforcing_cnis(api_client: Any) -> list[str]:
    """Names of the NetworkPolicy-enforcing CNI DaemonSets found (may be empty); used by `eksir doctor`.

    Raises PermissionDeniedError / UnreachableError (via k8s_call) when DaemonSets cannot be listed.
    """
    return list(survey_cnis(api_client).enforcing)


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


def isolation_limits(api_client: Any, pod: dict[str, Any]) -> list[str]:
    """Why a NetworkPolicy selecting this pod would contain nothing; [] when it can be effective.

    hostNetwork pods are never subject to NetworkPolicy; the VPC CNI applies none to standalone pods (no
    ownerReferences) and none on Fargate, where no DaemonSet-based CNI runs either; and a policy nothing
    enforces is an object in etcd. Calico and Cilium have no standalone-pod limit. What cannot be read
    counts as a limit: isolation is never assumed.
    """
    spec = pod.get("spec") or {}
    limits = [HOST_NETWORK] if spec.get("hostNetwork") else []
    if str(spec.get("nodeName", "")).startswith("fargate-"):  # no DaemonSet (Calico, Cilium) runs on Fargate
        limits.append(FARGATE)
    try:
        survey = survey_cnis(api_client)
    except EksirError as exc:
        return [*limits, f"could not check which CNI enforces NetworkPolicy ({exc.message})"]
    if not survey.enforcing:
        limits.append(NOT_ENFORCED)
    if survey.only_vpc_cni and not (pod.get("metadata") or {}).get("ownerReferences"):
        limits.append(STANDALONE)
    return limits
