"""Kubernetes API client construction (kubeconfig or EKS bearer token) and ApiException translation.

EKS tokens (clients/eks_token.py) are presigned STS GetCallerIdentity URLs with the `x-k8s-aws-id` header
bound to the cluster name, exactly what `aws eks get-token` produces; they are built from the caller's AWS
credentials, accepted by EKS for 15 minutes, refreshed before that, and never logged.
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

from eksir.clients.eks_token import TokenSource
from eksir.errors import (
    BadInputError,
    EksirError,
    NotFoundError,
    PermissionDeniedError,
    TemporaryError,
    UnreachableError,
)


def api_client_from_kubeconfig(path: Path | str | None, context: str | None = None) -> Any:
    """Build an ApiClient from a kubeconfig file, or several joined by os.pathsep and merged as kubectl
    merges them (default: ~/.kube/config); clients/kubeconfig.py decides which one a command uses.

    Raises BadInputError when it cannot be loaded (missing file, bad YAML, unknown context).
    """
    try:
        return k8s_config.new_client_from_config(config_file=str(path) if path else None, context=context)
    except (k8s_config.ConfigException, OSError, TypeError) as exc:
        raise BadInputError(f"cannot load kubeconfig {path or '(default)'}: {exc}") from exc


def api_client_from_eks(endpoint: str, ca_data_b64: str, token: str | TokenSource) -> Any:
    """Build an ApiClient for an EKS endpoint from DescribeCluster's endpoint and CA and a bearer token.

    With a TokenSource the token is refreshed before every request once it is old (the client's
    `refresh_api_key_hook`), so one client serves a whole response; a plain string is used as is.
    """
    configuration = k8s_client.Configuration()
    configuration.host = endpoint
    configuration.ssl_ca_cert = _CA_FILES.path_for(base64.b64decode(ca_data_b64))
    if isinstance(token, TokenSource):
        configuration.api_key = {"authorization": f"Bearer {token.current()}"}
        configuration.refresh_api_key_hook = token.refresh_hook
    else:
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
        if status == 401:
            return PermissionDeniedError(
                f"{doing}: the API server did not authenticate the caller (401 {reason}): for an EKS token, "
                "no access entry or aws-auth mapping admits these AWS credentials, or the token is invalid"
            )
        if status == 403:
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
