"""Building the ActionContext a run hands to each step: AWS clients, a Kubernetes client, the case id.

Why a provider for the Kubernetes client: it is built only when a step needs it, from the source the
responder chose (`--kubeconfig` > `KUBECONFIG` > EKS token, see clients/kubeconfig.py). An EKS bearer token
is accepted for 15 minutes and a response can run longer (snapshots, retries, a responder thinking at a
prompt), so an EKS client carries a TokenSource that mints a new token from fresh AWS credentials before the
old one ages out; with a kubeconfig, the kubernetes library handles credentials itself.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksir.actions.base import ActionContext
from eksir.clients.aws import AwsClients, aws_call
from eksir.clients.eks_token import TokenSource, eks_bearer_token
from eksir.clients.k8s import api_client_from_eks, api_client_from_kubeconfig
from eksir.clients.kubeconfig import KubeSource, SourceKind, choose_source
from eksir.errors import BadInputError


@dataclass
class KubeProvider:
    """An ApiClient from a kubeconfig, or for an EKS cluster with a token minted from AWS credentials.

    `environ` replaces os.environ when choosing the source (tests); `use_kubeconfig` forces the default
    kubeconfig (~/.kube/config) when neither --kubeconfig nor KUBECONFIG is given.
    """

    aws: AwsClients
    cluster_name: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    use_kubeconfig: bool = False
    environ: Mapping[str, str] | None = None
    _client: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def source(self) -> KubeSource:
        """Where the credentials come from. Raises BadInputError for a kubeconfig that does not exist."""
        chosen = choose_source(self.kubeconfig, self.context, self.environ)
        if chosen.kind is SourceKind.EKS_TOKEN and self.use_kubeconfig:
            return KubeSource(SourceKind.KUBECONFIG, "default kubeconfig", None, self.context)
        return chosen

    def _build(self) -> Any:
        """Raises BadInputError (no cluster, bad kubeconfig) or the eksir error of DescribeCluster."""
        source = self.source()
        if source.kind is SourceKind.KUBECONFIG:
            return api_client_from_kubeconfig(source.kubeconfig, source.context)
        if not self.cluster_name:
            raise BadInputError("no cluster name to build an EKS token for: pass --kubeconfig")
        with aws_call(f"describe EKS cluster {self.cluster_name}"):
            cluster = self.aws("eks").describe_cluster(name=self.cluster_name)["cluster"]
        endpoint = cluster.get("endpoint")
        ca = (cluster.get("certificateAuthority") or {}).get("data")
        if not endpoint or not ca:
            raise BadInputError(f"cluster {self.cluster_name} has no endpoint/CA yet (still creating?)")
        return api_client_from_eks(endpoint, ca, TokenSource(self._mint))

    def _mint(self) -> str:
        """A new EKS token. Raises PermissionDeniedError (no AWS credentials) or another eksir error."""
        name = self.cluster_name or ""
        with aws_call(f"create the EKS bearer token for {name}"):
            return eks_bearer_token(self.aws("sts"), name)


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
