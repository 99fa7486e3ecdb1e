"""Kubernetes API client construction (kubeconfig or EKS bearer token) and ApiException translation.

EKS tokens are presigned STS GetCallerIdentity URLs with the `x-k8s-aws-id` header bound to the cluster
name, exactly what `aws eks get-token` produces; they are built from the caller's AWS credentials, valid
for 15 minutes, and never logged.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from eksir.errors import (
    BadInputError,
    EksirError,
    NotFoundError,
    PermissionDeniedError,
    TemporaryError,
    UnreachableError,
)

EKS_TOKEN_PREFIX = "k8s-aws-v1."
_CLUSTER_ID_HEADER = "x-k8s-aws-id"


def api_client_from_kubeconfig(path: Path | None, context: str | None = None) -> Any:
    """Build an ApiClient from a kubeconfig file (default: $KUBECONFIG / ~/.kube/config)."""
    try:
        return k8s_config.new_client_from_config(config_file=str(path) if path else None, context=context)
    except (k8s_config.ConfigException, OSError, TypeError) as exc:
        raise BadInputError(f"cannot load kubeconfig {path or '(default)'}: {exc}") from exc


def eks_bearer_token(sts_client: Any, cluster_name: str) -> str:
    """Create the EKS authentication token from an STS client, as `aws eks get-token` does."""

    def add_cluster_header(params: dict[str, Any], **_kwargs: Any) -> None:
        params["headers"][_CLUSTER_ID_HEADER] = cluster_name

    events = sts_client.meta.events
    events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    try:
        url = sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
        )
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", add_cluster_header)
    return EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def api_client_from_eks(endpoint: str, ca_data_b64: str, token: str) -> Any:
    """Build an ApiClient for an EKS endpoint from DescribeCluster's endpoint and CA and a bearer token."""
    configuration = k8s_client.Configuration()
    configuration.host = endpoint
    configuration.ssl_ca_cert = _CA_FILES.path_for(base64.b64decode(ca_data_b64))
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return k8s_client.ApiClient(configuration)


class _CaFiles:
    """The cluster CAs the Kubernetes client needs as files: one per CA, reused, removed at exit.

    Why not a temporary file per client: the token is refreshed every few minutes and each refresh built a
    new client, leaving one more CA file behind each time (they were never deleted). urllib3 re-reads the
    file for every new connection, so it must outlive the client; a private directory (0700) holding one
    file per distinct CA, named by its sha256 and removed when the process exits, bounds them to the number
    of clusters.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: Path | None = None

    def path_for(self, pem: bytes) -> str:
        with self._lock:
            if self._dir is None or not self._dir.is_dir():
                self._dir = Path(tempfile.mkdtemp(prefix="eksir-ca-"))
                atexit.register(shutil.rmtree, self._dir, True)
            path = self._dir / f"{hashlib.sha256(pem).hexdigest()}.crt"
            if not path.is_file():
                partial = path.with_suffix(".partial")
                partial.write_bytes(pem)
                partial.replace(path)
            return str(path)


_CA_FILES = _CaFiles()


def translate_api_exception(exc: Exception, doing: str) -> EksirError:
    """Map a Kubernetes client exception to an eksir error."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = exc.reason or ""
        if status in (401, 403):
            return PermissionDeniedError(f"{doing}: forbidden by the API server ({status} {reason})")
        if status == 404:
            return NotFoundError(f"{doing}: not found")
        if status in (409, 429) or status >= 500 or status == 0:
            return TemporaryError(f"{doing}: API server answered {status} {reason}; retry")
        return EksirError(f"{doing}: API server answered {status} {reason}")
    if isinstance(exc, (HTTPError, OSError)):
        return UnreachableError(f"{doing}: cannot reach the Kubernetes API server ({exc.__class__.__name__})")
    return EksirError(f"{doing}: {exc}")


@contextmanager
def k8s_call(doing: str) -> Iterator[None]:
    """`with k8s_call("label pod x"):` turns client exceptions into eksir errors."""
    try:
        yield
    except (ApiException, HTTPError, OSError) as exc:
        raise translate_api_exception(exc, doing) from exc
