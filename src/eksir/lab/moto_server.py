"""moto as the lab's AWS: a real HTTP server on loopback, reached by boto3 through endpoint configuration.

Tests run moto in-process (`ThreadedMotoServer`) because it starts in milliseconds and dies with the test
session. `eksir lab up` needs the server to outlive the CLI process, so it starts `python -m moto.server` as a
detached process in its own process group; the caller records its pid so `eksir lab down` can stop it.
Nothing here patches boto3: every client is an ordinary client whose `endpoint_url` points at the server, so
the code under test cannot tell moto from AWS by anything but the URL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from eksir.errors import LabError

DEFAULT_REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class AwsEndpoint:
    """Where the lab's AWS lives and which (dummy) credentials reach it."""

    url: str
    region: str = DEFAULT_REGION
    access_key_id: str = DUMMY_ACCESS_KEY_ID
    secret_access_key: str = DUMMY_SECRET_ACCESS_KEY

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
        so moto attributes them to that principal exactly as AWS would.
        """
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=access_key_id or self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            aws_session_token=session_token,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS CLI and any SDK at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """True when something already listens on (or holds) `port` on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def is_ready(url: str) -> bool:
    """True when an HTTP server answers at `url` (any status code counts: moto answers 404 to `/`)."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True
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

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto is the optional `lab` extra

        if port and port_in_use(port):
            raise LabError(f"port {port} on {LOOPBACK} is already in use; cannot start moto there")
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=port or free_port(), verbose=False)
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
    argv: tuple[str, ...]


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def spawn_detached(workdir: Path, port: int | None = None, timeout: float = 30.0) -> DetachedMoto:
    """Start `python -m moto.server` on loopback in a new session, wait until it answers, return its pid.

    The child gets its own process group, so Ctrl-C on the CLI does not kill it and `stop_detached` can
    stop it and any children together. Raises LabError when the port is taken, the server exits during
    start, or it does not answer within `timeout`; in the last two cases nothing is left running.
    """
    if port is not None and port_in_use(port):
        raise LabError(f"port {port} on {LOOPBACK} is already in use; cannot start moto there")
    chosen = port if port is not None else free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "moto.log"
    argv = (sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(chosen))
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    endpoint = AwsEndpoint(url=f"http://{LOOPBACK}:{chosen}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _log_tail(log_path)
            raise LabError(f"moto server exited during start (code {proc.returncode}); {log_path}: {tail}")
        if is_ready(endpoint.url):
            return DetachedMoto(proc.pid, chosen, endpoint, log_path, argv)
        time.sleep(0.1)
    stop_detached(proc.pid)
    raise LabError(f"moto server did not answer on {endpoint.url} within {timeout:.0f}s; log {log_path}")


def stop_detached(pid: int, timeout: float = 10.0) -> None:
    """Stop a detached server's process group: SIGTERM, then SIGKILL after `timeout`. Idempotent."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while `pid` runs; reaps it first when it is our own exited child."""
    with contextlib.suppress(ChildProcessError):
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
