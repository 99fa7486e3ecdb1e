"""Building the ActionContext a run hands to each step: AWS clients, a Kubernetes client, the case id.

Why a provider for the Kubernetes client: an EKS bearer token is valid for 15 minutes and a response can run
longer (snapshots, retries, a responder thinking at a prompt), so the client is rebuilt from fresh AWS
credentials before the token ages out; with a kubeconfig, the kubernetes library handles credentials itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksir.actions.base import ActionContext
from eksir.clients.aws import AwsClients, aws_call
from eksir.clients.k8s import api_client_from_eks, api_client_from_kubeconfig, eks_bearer_token
from eksir.errors import BadInputError

TOKEN_REFRESH_S = 10 * 60.0


@dataclass
class KubeProvider:
    """An ApiClient from a kubeconfig, or for an EKS cluster from a token minted with AWS credentials."""

    aws: AwsClients
    cluster_name: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    use_kubeconfig: bool = False
    _client: Any = None
    _built_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> Any:
        with self._lock:
            stale = time.monotonic() - self._built_at > TOKEN_REFRESH_S
            if self._client is None or (stale and not self._from_kubeconfig):
                self._client = self._build()
                self._built_at = time.monotonic()
            return self._client

    @property
    def _from_kubeconfig(self) -> bool:
        return self.use_kubeconfig or self.kubeconfig is not None or self.context is not None

    def _build(self) -> Any:
        """Raises BadInputError (no cluster, bad kubeconfig) or the eksir error of DescribeCluster."""
        if self._from_kubeconfig:
            return api_client_from_kubeconfig(self.kubeconfig, self.context)
        if not self.cluster_name:
            raise BadInputError("no cluster name to build an EKS token for: pass --kubeconfig")
        with aws_call(f"describe EKS cluster {self.cluster_name}"):
            cluster = self.aws("eks").describe_cluster(name=self.cluster_name)["cluster"]
        endpoint = cluster.get("endpoint")
        ca = (cluster.get("certificateAuthority") or {}).get("data")
        if not endpoint or not ca:
            raise BadInputError(f"cluster {self.cluster_name} has no endpoint/CA yet (still creating?)")
        with aws_call("create the EKS bearer token"):
            token = eks_bearer_token(self.aws("sts"), self.cluster_name)
        return api_client_from_eks(endpoint, ca, token)


@dataclass
class ContextFactory:
    """Callable the Runner uses to get each step's ActionContext."""

    case_id: str
    aws: AwsClients
    kube: KubeProvider
    dry_run: bool = False
    account_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> ActionContext:
        return ActionContext(
            case_id=self.case_id,
            aws=self.aws.client,
            k8s=self.kube,
            region=self.aws.region,
            account_id=self.account_id,
            dry_run=self.dry_run,
            extras=dict(self.extras),
        )
