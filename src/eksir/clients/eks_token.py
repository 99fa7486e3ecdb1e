"""EKS bearer tokens, built the way `aws eks get-token` and aws-iam-authenticator build them, and kept fresh.

A token is `k8s-aws-v1.` + base64url (no padding) of a presigned STS GetCallerIdentity URL whose SigV4
signature covers the `x-k8s-aws-id` header set to the cluster name. The header is not in the URL: the
verifier (EKS's authenticator) adds it with *its* cluster name before checking the signature, so a token
minted for another cluster does not verify. The presign says `X-Amz-Expires=60` (as the AWS CLI does); EKS
accepts a token for 15 minutes after its `X-Amz-Date`, and clients are expected to mint a new one before that.

Why handlers registered once and driven by the request context (as awscli does), not a handler registered
around each presign: the STS client is shared between threads (the runner applies steps in parallel), and
a temporary registration would leak one thread's cluster name into another's token. The earlier version
also registered a `before-sign` handler taking `params`, which botocore never passes (it passes `request`),
so every token crashed with a TypeError.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EKS_TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES_S = 60
TOKEN_LIFETIME_S = 15 * 60  # what EKS accepts after the token's X-Amz-Date
REFRESH_AFTER_S = 10 * 60  # well before TOKEN_LIFETIME_S, so a request never carries a token about to lapse
_HANDLER_ID = "eksir-k8s-aws-id"


def _take_cluster_id(params: dict[str, Any], context: dict[str, Any], **_kwargs: Any) -> None:
    """provide-client-params: move our pseudo-parameter out of the API params (STS has no such member)."""
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _sign_cluster_id(request: Any, **_kwargs: Any) -> None:
    """before-sign: add the header, so SigV4 lists it in X-Amz-SignedHeaders and covers its value."""
    cluster_id = request.context.get(CLUSTER_ID_HEADER)
    if cluster_id:
        request.headers[CLUSTER_ID_HEADER] = cluster_id


def _register(sts_client: Any) -> None:
    events = sts_client.meta.events
    events.register(
        "provide-client-params.sts.GetCallerIdentity", _take_cluster_id, unique_id=_HANDLER_ID + "-params"
    )
    events.register("before-sign.sts.GetCallerIdentity", _sign_cluster_id, unique_id=_HANDLER_ID + "-sign")


def presigned_url(sts_client: Any, cluster_name: str) -> str:
    """The presigned GetCallerIdentity URL with `x-k8s-aws-id: cluster_name` signed into it.

    Raises botocore errors (no credentials, bad region); callers wrap it in `aws_call`.
    """
    _register(sts_client)  # idempotent: unique_id makes a second registration a no-op
    url: str = sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGN_EXPIRES_S,
        HttpMethod="GET",
    )
    return url


def eks_bearer_token(sts_client: Any, cluster_name: str) -> str:
    """The EKS bearer token for `cluster_name` from the STS client's credentials (never log it)."""
    url = presigned_url(sts_client, cluster_name)
    return EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The presigned URL inside a token. Raises ValueError when the token is not an EKS token."""
    if not token.startswith(EKS_TOKEN_PREFIX):
        raise ValueError(f"not an EKS token (no {EKS_TOKEN_PREFIX} prefix)")
    body = token[len(EKS_TOKEN_PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


@dataclass
class TokenSource:
    """The current token for one cluster, minted again once it is `refresh_after` seconds old.

    Used as the Kubernetes client's `refresh_api_key_hook`, which the client calls before every request, so a
    long response (snapshots, a responder thinking at a prompt) never sends a token EKS no longer accepts.
    Thread-safe. `mint` raises what `eks_bearer_token` raises.
    """

    mint: Callable[[], str]
    refresh_after: float = REFRESH_AFTER_S
    clock: Callable[[], float] = time.monotonic
    _token: str | None = None
    _minted_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def current(self) -> str:
        with self._lock:
            if self._token is None or self.clock() - self._minted_at >= self.refresh_after:
                self._token = self.mint()
                self._minted_at = self.clock()
            return self._token

    def refresh_hook(self, configuration: Any) -> None:
        """kubernetes `Configuration.refresh_api_key_hook`: put the current token in the header."""
        configuration.api_key["authorization"] = f"Bearer {self.current()}"
