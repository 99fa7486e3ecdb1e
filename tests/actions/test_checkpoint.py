"""`k8s.checkpoint_container` and its preflight through the lab's real kube-apiserver node proxy.

Limit, said plainly: the lab runs no kubelet, and its containerd 1.6 has no CRI checkpoint. So the kubelet
end is a stand-in: a tiny HTTPS server (this module's `StandInKubelet`) that answers the kubelet checkpoint
API's documented request and response (kubernetes.io, "Kubelet Checkpoint API": `POST
/checkpoint/{namespace}/{pod}/{container}?timeout=N` -> 200 `{"items": ["<root-dir>/checkpoints/checkpoint-
<pod>_<namespace>-<container>-<timestamp>.tar"]}`, 404 when the feature gate is off, 500 when the runtime
cannot checkpoint) and the kubelet's `/configz`. Everything in front of it is real: the node object, the API
server's node proxy (which dials the node's InternalIP and kubelet port from the node's status), RBAC, the
pod and the node annotation eksir writes. The node proxy refuses loopback addresses, so the stand-in listens
on this machine's outbound address.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from eksir.actions.evidence.checkpoint import ANNOTATION, CheckpointContainer, CheckpointParams
from eksir.errors import StepFailedError
from eksir.lab.certs import generate_pki
from eksir.resolve.checkpoint import checkpoint_preflight
from eksir.resolve.kube import KubeReader
from eksir.resolve.node_kind import detect_node_kind
from tests.actions.conftest import make_ctx
from tests.resolve.nodes import create_node, managed_labels

pytestmark = pytest.mark.lab
CASE = "case-0001"


class StandInKubelet(ThreadingHTTPServer):
    """Stands in for the kubelet's HTTPS endpoint only (see the module docstring)."""

    def __init__(self, address: str, certs: Path) -> None:
        super().__init__((address, 0), _Handler)
        pki = generate_pki(certs)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.serving.cert, pki.serving.key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.requests: list[tuple[str, str]] = []
        self.checkpoint_status = 200
        self.gate: bool | None = True


class _Handler(BaseHTTPRequestHandler):
    server: StandInKubelet

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path))
        gates = {} if self.server.gate is None else {"ContainerCheckpoint": self.server.gate}
        self._answer(200, {"kubeletconfig": {"featureGates": gates}})

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path))
        parts = self.path.split("?")[0].split("/")
        if len(parts) != 5 or parts[1] != "checkpoint":
            self._answer(404, b"404 page not found")
        elif self.server.checkpoint_status == 500:
            self._answer(
                500,
                b"checkpointing of container failed: rpc error: code = Unimplemented desc = "
                b"method CheckpointContainer not implemented",
            )
        else:
            _, _, namespace, pod, container = parts
            stamp = "2026-12-07T15:00:00Z"
            archive = f"/var/lib/kubelet/checkpoints/checkpoint-{pod}_{namespace}-{container}-{stamp}.tar"
            self._answer(200, {"items": [archive]})


def _outbound_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound interface
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[StandInKubelet]:
    address = _outbound_address()
    if address is None:
        pytest.skip("no non-loopback address: the API server's node proxy refuses loopback")
    server = StandInKubelet(address, tmp_path / "pki")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def scene(control_plane: Any, k8s_namespace: str, kubelet: StandInKubelet) -> Iterator[dict[str, Any]]:
    """A node whose status points at the stand-in kubelet, and a running privileged pod on it."""
    api = control_plane.api_client()
    node = f"ip-{uuid.uuid4().hex[:8]}.ec2.internal"
    address, port = kubelet.server_address[0], kubelet.server_address[1]
    status = {
        "addresses": [{"type": "InternalIP", "address": address}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }
    raw = create_node(
        api,
        node,
        managed_labels(),
        "aws:///us-east-1a/i-0123456789abcdef0",
        "Ubuntu 24.04.1 LTS",
        status=status,
        kubelet="v1.31.2",
        runtime="containerd://2.0.4",
    )
    core = client.CoreV1Api(api)
    spec = {"nodeName": node, "containers": [{"name": "miner", "image": "busybox:1.36"}]}
    pod = core.create_namespaced_pod(k8s_namespace, {"metadata": {"name": "victim"}, "spec": spec})
    running = {
        "name": "miner",
        "image": "busybox:1.36",
        "imageID": "",
        "ready": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": "2026-12-07T14:00:00Z"}},
    }
    core.patch_namespaced_pod_status(
        "victim", k8s_namespace, {"status": {"phase": "Running", "containerStatuses": [running]}}
    )
    try:
        yield {"api": api, "node": node, "raw": raw, "namespace": k8s_namespace, "uid": pod.metadata.uid}
    finally:
        core.delete_node(node)
        api.close()


def _params(scene: dict[str, Any]) -> CheckpointParams:
    return CheckpointParams(
        node_name=scene["node"],
        namespace=scene["namespace"],
        pod_name="victim",
        pod_uid=scene["uid"],
        container_name="miner",
        timeout_seconds=60,
    )


def test_the_preflight_reads_the_kubelets_feature_gate_through_the_node_proxy(
    scene: dict[str, Any], kubelet: StandInKubelet
) -> None:
    kind = detect_node_kind(scene["raw"])

    preflight = checkpoint_preflight(KubeReader(scene["api"]), scene["raw"], kind)

    assert ("GET", "/configz") in kubelet.requests
    assert preflight.available is True, preflight.reasons
    assert any("ContainerCheckpoint on" in r for r in preflight.reasons)
    kubelet.gate = False
    off = checkpoint_preflight(KubeReader(scene["api"]), scene["raw"], kind)
    assert off.available is False
    assert any("ContainerCheckpoint is off" in r for r in off.reasons)


def test_a_checkpoint_is_posted_to_the_kubelet_and_recorded_on_the_node(
    scene: dict[str, Any], kubelet: StandInKubelet
) -> None:
    action, params = CheckpointContainer(), _params(scene)
    ctx = make_ctx(k8s=lambda: scene["api"], case_id=CASE)

    assert action.check(ctx, params).already_applied is False
    applied = action.apply(ctx, params)
    outcome = action.verify(ctx, params, applied)

    path = f"/checkpoint/{scene['namespace']}/victim/miner?timeout=60"
    assert ("POST", path) in kubelet.requests
    assert applied["archives"] == [
        f"/var/lib/kubelet/checkpoints/checkpoint-victim_{scene['namespace']}-miner-2026-12-07T15:00:00Z.tar"
    ]
    assert outcome.ok, outcome.detail
    node = client.CoreV1Api(scene["api"]).read_node(scene["node"])
    recorded = json.loads(node.metadata.annotations[ANNOTATION])
    assert recorded == [
        {"case": CASE, "pod_uid": scene["uid"], "container": "miner", "archive": applied["archives"][0]}
    ]
    posts = sum(1 for method, _ in kubelet.requests if method == "POST")
    assert action.check(ctx, params).already_applied is True
    assert action.apply(ctx, params)["archives"] == applied["archives"]
    assert sum(1 for method, _ in kubelet.requests if method == "POST") == posts  # a second run is a no-op
    action.rollback(ctx, params, applied)
    node = client.CoreV1Api(scene["api"]).read_node(scene["node"])
    assert ANNOTATION not in (node.metadata.annotations or {})
    assert action.verify(ctx, params, applied).ok is False


def test_a_runtime_that_cannot_checkpoint_fails_the_step_and_records_nothing(
    scene: dict[str, Any], kubelet: StandInKubelet
) -> None:
    kubelet.checkpoint_status = 500
    action, params = CheckpointContainer(), _params(scene)
    ctx = make_ctx(k8s=lambda: scene["api"], case_id=CASE)

    with pytest.raises(StepFailedError) as failed:
        action.apply(ctx, params)

    assert "crictl/ctr capture stands" in failed.value.message
    node = client.CoreV1Api(scene["api"]).read_node(scene["node"])
    assert ANNOTATION not in (node.metadata.annotations or {})


def test_two_cases_checkpointing_on_one_node_keep_each_others_records(
    scene: dict[str, Any], kubelet: StandInKubelet
) -> None:
    """The node annotation is a merge: a second case's entry is added beside the first's, and one case's
    rollback removes only its own entries."""
    action, params = CheckpointContainer(), _params(scene)
    first = make_ctx(k8s=lambda: scene["api"], case_id=CASE)
    second = make_ctx(k8s=lambda: scene["api"], case_id="eksir-20261207-0000000002")
    applied_first = action.apply(first, params)
    applied_second = action.apply(second, params)
    node = client.CoreV1Api(scene["api"]).read_node(scene["node"])
    recorded = json.loads(node.metadata.annotations[ANNOTATION])
    assert [e["case"] for e in recorded] == [CASE, "eksir-20261207-0000000002"]
    action.rollback(first, params, applied_first)
    assert action.verify(second, params, applied_second).ok
    assert not action.verify(first, params, applied_first).ok
    action.rollback(second, params, applied_second)
    node = client.CoreV1Api(scene["api"]).read_node(scene["node"])
    assert ANNOTATION not in (node.metadata.annotations or {})
