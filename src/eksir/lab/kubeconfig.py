"""Client access to the lab: kubeconfig files for its certificates, and clients that act as any identity.

Why files and not only in-memory clients: the responder uses the lab exactly like a real cluster
(`kubectl --kubeconfig ...`, `eksir ... --kubeconfig ...`), and the same file drives the Python client.
Paths to the PEM files are absolute, so the kubeconfig works from any directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from urllib3 import HTTPHeaderDict

from eksir.errors import LabError

CLUSTER_NAME = "eksir-lab"


def write_kubeconfig(
    path: Path, *, server: str, ca_file: Path, cert_file: Path, key_file: Path, user: str
) -> Path:
    """Write a single-context kubeconfig (mode 0600) authenticating with a client certificate."""
    context = f"{user}@{CLUSTER_NAME}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority": str(ca_file.resolve())},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(cert_file.resolve()),
                    "client-key": str(key_file.resolve()),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def make_identity_client(
    server: str,
    ca_file: Path,
    front_proxy: tuple[Path, Path],
    *,
    username: str,
    groups: Sequence[str],
    uid: str | None,
    extra: Mapping[str, Sequence[str]],
) -> ApiClient:
    """An ApiClient authenticating with the front-proxy certificate and asserting an identity in headers.

    Why a wrapper around the connection pool: several groups or extra values need the same header repeated
    (the API server does not split on commas), which the client's `default_headers` dict cannot express.
    """
    headers = identity_headers(username, groups, uid, extra)
    configuration = client.Configuration()
    configuration.host = server
    configuration.ssl_ca_cert = str(ca_file)
    configuration.cert_file = str(front_proxy[0])
    configuration.key_file = str(front_proxy[1])
    api = client.ApiClient(configuration)
    api.rest_client.pool_manager = _HeaderPool(api.rest_client.pool_manager, headers)
    return api


def identity_headers(
    username: str, groups: Sequence[str], uid: str | None, extra: Mapping[str, Sequence[str]]
) -> list[tuple[str, str]]:
    """The X-Remote-* headers for an identity; extra keys are %-escaped so their case survives.

    The API server lowercases extra keys and then %-unescapes them, so `accessKeyId` is sent as
    `access%4Beyid`. Raises LabError for an empty user or a value with control characters.
    """
    if not username:
        raise LabError("an identity needs a non-empty username")
    headers = [("X-Remote-User", username)]
    if uid:
        headers.append(("X-Remote-Uid", uid))
    headers += [("X-Remote-Group", group) for group in groups]
    for key, values in extra.items():
        headers += [(f"X-Remote-Extra-{_escape_extra_key(key)}", value) for value in values]
    for name, value in headers:
        if not value.isprintable() or not value.isascii():
            raise LabError(f"{name} value {value!r} cannot be sent in an HTTP header")
    return headers


def _escape_extra_key(key: str) -> str:
    if not key:
        raise LabError("an extra key must not be empty")
    return "".join(ch if ch in _KEY_SAFE else "".join(f"%{b:02X}" for b in ch.encode()) for ch in key)


_KEY_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.~!#$&'*+^`|")


class _HeaderPool:
    """Delegates to a urllib3 pool manager, adding the identity headers (repeatable) to every request."""

    def __init__(self, inner: Any, headers: list[tuple[str, str]]) -> None:
        self._inner = inner
        self._headers = headers
        self._names = {name.lower() for name, _ in headers} | {"x-remote-group", "x-remote-uid"}

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        merged = HTTPHeaderDict()
        for name, value in dict(headers or {}).items():
            if name.lower() not in self._names and not name.lower().startswith("x-remote-"):
                merged.add(name, value)
        for name, value in self._headers:
            merged.add(name, value)
        return self._inner.request(method, url, *args, headers=merged, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
