"""moto as the lab's AWS: a real HTTP server on loopback, reached by boto3 through endpoint configuration.

Tests run moto in-process (`ThreadedMotoServer`) because it starts in milliseconds and dies with the test
session. `eksir lab up` needs the server to outlive the CLI process, so it starts `python -m moto.server` as a
detached process in its own process group; the caller records its pid so `eksir lab down` can stop it.
Nothing here patches boto3: every client is an ordinary client from eksir's one factory (`clients.aws`, the
same Config as the product's) whose `endpoint_url` points at the server, so the code under test cannot tell
moto from AWS by anything but the URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from eksir.clients.aws import new_client, new_session
from eksir.errors import LabError
from eksir.lab import processes
from eksir.lab.build import log_tail

DEFAULT_REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
LOOPBACK = "127.0.0.1"
MAX_ATTEMPTS = 3
"""Retries against moto: it never throttles, so retrying only slows down noticing that it is gone."""
_SPAWN_ATTEMPTS = 3
LOAD_MANAGED_POLICIES = "MOTO_IAM_LOAD_MANAGED_POLICIES"
EKS_NODE_AMI = "ami-0c1e3f5a7b9d2e4f6"
_EKS_AMI: dict[str, object] = {
    "ami_id": EKS_NODE_AMI,
    "architecture": "x86_64",
    "description": "EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: 1.31.0)",
    "hypervisor": "xen",
    "image_type": "machine",
    "name": "amazon-eks-node-al2023-x86_64-standard-1.31-v20241024",
    "owner_id": "602401143452",
    "platform": None,
    "public": True,
    "root_device_name": "/dev/xvda",
    "root_device_type": "ebs",
    "sriov": "simple",
    "state": "available",
    "tags": {},
    "virtualization_type": "hvm",
}


def configure_moto_env(workdir: Path) -> None:
    """Environment moto reads at start: load AWS managed policies, and only the EKS node AMI.

    AWS managed policies (AdministratorAccess, AmazonEKSWorkerNodePolicy) exist in moto only on request;
    the AMI list is replaced by the one AMI the lab's nodes run. Existing values are left alone.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    amis = workdir / "moto-amis.json"
    amis.write_text(json.dumps([_EKS_AMI]), encoding="utf-8")
    os.environ.setdefault(LOAD_MANAGED_POLICIES, "true")
    os.environ.setdefault("MOTO_AMIS_PATH", str(amis))


@dataclass(frozen=True)
class AwsEndpoint:
    """Where the lab's AWS lives and which (dummy) credentials reach it."""

    url: str
    region: str = DEFAULT_REGION
    access_key_id: str = DUMMY_ACCESS_KEY_ID
    secret_access_key: str = DUMMY_SECRET_ACCESS_KEY

    _session: Any = field(default_factory=new_session, compare=False, repr=False)
    _clients: dict[tuple[str, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def client(
        self,
        service: str,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
    ) -> Any:
        """A boto3 client for `service` pointed at this endpoint, optionally with other credentials.

        Other credentials matter: the lab's attacker makes its AWS calls with the keys moto issued to it,
        so moto attributes them to that principal exactly as AWS would. Clients are cached per service and
        credentials on this endpoint (a fresh boto3 session costs ~0.1-0.5 s), not process-wide. Not
        thread-safe, like boto3 sessions.
        """
        key = access_key_id or self.access_key_id
        secret = secret_access_key or self.secret_access_key
        cache_key = (service, key, secret, session_token or "")
        if cache_key not in self._clients:
            self._clients[cache_key] = new_client(
                service,
                session=self._session,
                endpoint_url=self.url,
                region=self.region,
                access_key_id=key,
                secret_access_key=secret,
                session_token=session_token,
                max_attempts=MAX_ATTEMPTS,
            )
        return self._clients[cache_key]

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS CLI and any SDK at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }


def is_ready(url: str) -> bool:
    """True when moto itself answers at `url`: its dashboard, `/moto-api/`, with 200 and moto's name in it.

    Any other answer is not moto: while moto still imports, another lab server that took its port (the EKS
    authenticator answers 501 to a GET) would otherwise pass for it, and every AWS call would go there.
    """
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1.0) as answer:
            return answer.status == HTTPStatus.OK and b"moto" in answer.read(65536).lower()
    except (urllib.error.URLError, OSError):
        return False


def reset(endpoint: AwsEndpoint) -> None:
    """Drop every resource in the server, so a test session can reseed from a clean state.

    Raises LabError when the server does not answer.
    """
    request = urllib.request.Request(f"{endpoint.url}/moto-api/reset", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10.0):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"moto server at {endpoint.url} did not accept a reset: {exc}") from exc


class InProcessMoto:
    """moto's ThreadedMotoServer on a free loopback port, for tests: fast, and gone when the process ends."""

    def __init__(self, workdir: Path, port: int = 0) -> None:
        configure_moto_env(workdir)  # before moto's EC2 module is imported: it reads the AMI path then
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto is the optional `lab` extra

        if port:
            processes.ensure_port_free(port, "moto server")
        # Port 0: the kernel picks the port at bind time, so no other process can take it first.
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
        self._server.start()
        host, bound = self._server.get_host_and_port()
        self.endpoint = AwsEndpoint(url=f"http://{host}:{bound}")

    def stop(self) -> None:
        """Stop the server thread; safe to call twice."""
        with contextlib.suppress(Exception):
            self._server.stop()

    def __enter__(self) -> InProcessMoto:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class DetachedMoto:
    """A moto server running as its own process group, outliving whoever started it."""

    pid: int
    port: int
    endpoint: AwsEndpoint
    log_path: Path


def spawn_detached(workdir: Path, port: int | None = None, timeout: float = 30.0) -> DetachedMoto:
    """Start `python -m moto.server` on loopback in a new session, recorded in `workdir`'s processes.json.

    The child gets its own process group, so Ctrl-C on the CLI does not kill it and
    `eksir.lab.processes.stop_all(workdir)` stops it with any children. Raises LabError when the port is
    taken, the server exits during start, or it does not answer within `timeout`; in the last two cases
    the server is stopped before raising, so nothing is left running. A port this function picked and lost to
    another process before the server bound it is picked again (up to three times).
    """
    for attempt in range(1, _SPAWN_ATTEMPTS + 1):
        chosen = port if port is not None else processes.free_ports(1)[0]
        try:
            return _spawn_once(workdir, chosen, timeout)
        except processes.PortInUseError:
            if port is not None or attempt == _SPAWN_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _spawn_once(workdir: Path, chosen: int, timeout: float) -> DetachedMoto:
    processes.ensure_port_free(chosen, "moto server")
    log_path = workdir / "moto.log"
    # moto's server with one lab route (eksir.lab.moto_eks: the EKS cluster's endpoint and CA)
    argv = [sys.executable, "-m", "eksir.lab.moto_eks", "-H", LOOPBACK, "-p", str(chosen)]
    configure_moto_env(workdir)  # inherited by the server process
    record = processes.start_process(workdir, "moto", argv, chosen, log_path)
    endpoint = AwsEndpoint(url=f"http://{LOOPBACK}:{chosen}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not processes.is_running(record):
                tail = log_tail(log_path, 5)
                error = processes.PortInUseError if "Address already in use" in tail else LabError
                raise error(f"moto server exited during start; {log_path}: {tail}")
            if is_ready(endpoint.url):
                return DetachedMoto(record.pid, chosen, endpoint, log_path)
            time.sleep(0.1)
        raise LabError(f"moto server did not answer on {endpoint.url} within {timeout:.0f}s; see {log_path}")
    except BaseException:
        processes.stop_all(workdir)
        raise
