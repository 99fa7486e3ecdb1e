"""Issue 12 item 13: the EKS client's CA file is written once per CA and removed at exit, not leaked on every
token refresh, and a client built on it reaches a real kube-apiserver over verified TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eksir.lab.controlplane import ControlPlane

pytestmark = pytest.mark.lab

REFRESHES = """
import base64, pathlib, sys
from kubernetes.client import VersionApi
from kubernetes.client.exceptions import ApiException
from eksir.clients.k8s import api_client_from_eks

server, ca_path, tmp = sys.argv[1:4]
ca = base64.b64encode(pathlib.Path(ca_path).read_bytes()).decode()
for _ in range(5):  # five token refreshes, five clients
    api = api_client_from_eks(server, ca, "k8s-aws-v1.not-a-valid-token")
print(len(list(pathlib.Path(tmp).rglob("*.crt"))))
try:
    VersionApi(api).get_code(_request_timeout=10)
    print("200")
except ApiException as exc:  # an HTTP answer at all means TLS verification with the CA file passed
    print(exc.status)
"""


def test_token_refreshes_reuse_one_ca_file_that_is_gone_after_exit(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", REFRESHES, control_plane.server, str(control_plane.ca_file), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    files_while_running, status = done.stdout.split()
    assert files_while_running == "1"
    assert status in {"200", "401"}
    assert list(tmp_path.rglob("*.crt")) == []
