"""Whether eksir can reach a cluster's API endpoint from where it runs, and if not, from where it can.

Why before resolution: a cluster whose endpoint is private only (`endpointPublicAccess: false`) answers only
inside its VPC (or a peered network). Run from a laptop or the security account's tooling account, every
Kubernetes call times out after the retries, and the responder sees "unreachable" with no hint why. The
plan says it up front: which VPC, which subnets and security groups a worker needs to sit in (the cluster
security group must admit 443 from it), so the responder runs eksir there instead of retrying.
A public endpoint restricted by `publicAccessCidrs` is reported as well: the caller's address must be listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eksir.clients.aws import aws_call

_OPEN = ("0.0.0.0/0",)


@dataclass(frozen=True)
class EndpointReach:
    """The cluster endpoint's exposure, as DescribeCluster reports it."""

    cluster: str
    public: bool
    private: bool
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    public_cidrs: tuple[str, ...] = field(default=_OPEN)

    @property
    def private_only(self) -> bool:
        return self.private and not self.public

    def note(self) -> str | None:
        """What the responder must know about reaching the endpoint, or None when it is open."""
        if self.private_only:
            return (
                f"cluster {self.cluster}'s API endpoint is private only: run eksir from a worker inside VPC "
                f"{self.vpc_id or '?'} (subnets {', '.join(self.subnet_ids) or '?'}; the cluster security "
                f"group{'s' if len(self.security_group_ids) > 1 else ''} "
                f"{', '.join(self.security_group_ids) or '?'} must admit 443 from it), or from a network "
                "peered with it; from here every Kubernetes call will time out"
            )
        if self.public and tuple(self.public_cidrs) != _OPEN:
            return (
                f"cluster {self.cluster}'s public endpoint admits only {', '.join(self.public_cidrs)}: "
                "run eksir from one of those addresses (or from inside the VPC if the private endpoint is on)"
            )
        return None


def endpoint_reach(eks: Any, name: str) -> EndpointReach:
    """DescribeCluster -> EndpointReach. Raises the eksir error of DescribeCluster (`aws_call`)."""
    with aws_call(f"describe EKS cluster {name}"):
        cluster = eks.describe_cluster(name=name).get("cluster") or {}
    return reach_of(name, cluster)


def reach_of(name: str, cluster: dict[str, Any]) -> EndpointReach:
    """EndpointReach of a DescribeCluster `cluster`; AWS's defaults (public on, private off) when absent."""
    vpc = cluster.get("resourcesVpcConfig") or {}
    groups = [*(vpc.get("securityGroupIds") or [])]
    if vpc.get("clusterSecurityGroupId"):
        groups.insert(0, vpc["clusterSecurityGroupId"])
    return EndpointReach(
        cluster=name,
        public=bool(vpc.get("endpointPublicAccess", True)),
        private=bool(vpc.get("endpointPrivateAccess", False)),
        vpc_id=vpc.get("vpcId"),
        subnet_ids=tuple(vpc.get("subnetIds") or ()),
        security_group_ids=tuple(groups),
        public_cidrs=tuple(vpc.get("publicAccessCidrs") or _OPEN),
    )
