"""The attacked node's runtime: a real containerd under the lab folder running the attacker's container.

Why real: capture (`ssm.capture_volatile`) and pause (`ssm.pause_container`) are won or lost on the node, so
the lab runs them against containerd itself, not against stand-in scripts. containerd (Debian's package)
starts as root with its own root, state and socket under `<lab>/node/`, so it meets no system containerd or
another lab. The CRI plugin is disabled (no kubelet runs here: the lab plays kubelet for the API server, as
before); the container is created with `ctr` in the CRI namespace `k8s.io` with the labels and annotations the
CRI plugin sets, so the node script's `ctr -n k8s.io` paths see it where they would on EKS. crictl is not on
the lab node (the lab's AMI is AL2023, whose build scripts ship nerdctl and ctr, not crictl), so the capture's
manifest reports it absent, as it would there; it would see only CRI-created containers anyway. No `pause`
sandbox container is run, and the container keeps its own PID namespace and no host mount (unlike the pod's
`hostPID` and `/` hostPath), so a capture on this shared machine stays bounded to the lab.

Other nodes stay simulated. Without root or without containerd the node stays simulated too, and `reason()`
says why: the game day then marks capture and pause `unavailable-in-lab` with that reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eksir.errors import LabError
from eksir.lab import node_image, processes
from eksir.lab.build import log_tail

NODE_DIR = "node"
NAMESPACE = "k8s.io"
FORCE_SIMULATED_ENV = "EKSIR_LAB_NODE_RUNTIME"
"""Set to `simulated` to keep the attacked node simulated even as root (e.g. to try the lab-mode path)."""
TOOLS = ("containerd", "ctr", "runc", "containerd-shim-runc-v2")
INSTALL_HINT = "apt-get install containerd runc busybox-static (scripts/install-test-deps.sh does it)"
_START_TIMEOUT_S = 20.0
_CTR_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PodContainer:
    """What the Kubernetes pod says about the container the node must run."""

    container_id: str
    name: str
    image: str
    command: tuple[str, ...]
    pod_name: str
    namespace: str
    pod_uid: str


@dataclass(frozen=True)
class NodeRuntime:
    """A running node runtime, as recorded in lab.json for the SSM agent, the tests and `lab down`."""

    instance_id: str
    socket: str
    root: str
    container_id: str
    pid: int
    image: str
    image_id: str
    cgroup_parent: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reason() -> str | None:
    """Why this machine cannot run the attacked node's containerd, or None when it can."""
    if os.environ.get(FORCE_SIMULATED_ENV, "").strip().lower() == "simulated":
        return f"the node runtime was turned off with {FORCE_SIMULATED_ENV}=simulated"
    if os.geteuid() != 0:
        return "the lab runs the node's containerd only as root (run `eksir lab up` as root)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not node_image.BUSYBOX.is_file():
        missing.append(str(node_image.BUSYBOX))
    if missing:
        return f"{', '.join(missing)} not found: {INSTALL_HINT}"
    return None


def pod_container(pod: dict[str, Any]) -> PodContainer:
    """The first container of the pod as the API server returned it (spec and status)."""
    spec = pod["spec"]["containers"][0]
    status = pod["status"]["containerStatuses"][0]
    meta = pod["metadata"]
    return PodContainer(
        container_id=str(status["containerID"]).removeprefix("containerd://"),
        name=str(spec["name"]),
        image=str(spec["image"]),
        command=tuple(str(a) for a in (spec.get("command") or []) + (spec.get("args") or [])),
        pod_name=str(meta["name"]),
        namespace=str(meta["namespace"]),
        pod_uid=str(meta["uid"]),
    )


def ctr(socket: str, *args: str, timeout: float = _CTR_TIMEOUT_S) -> str:
    """Run `ctr` against the node's containerd in the CRI namespace; stdout, or LabError with its stderr."""
    cmd = ["ctr", "--address", socket, "--namespace", NAMESPACE, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"`ctr {' '.join(args[:2])}` on the lab node failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise LabError(f"`ctr {' '.join(args[:2])}` on the lab node failed: {detail}")
    return done.stdout


def task_state(socket: str, container_id: str) -> tuple[int, str] | None:
    """(pid, status) of the container's task as containerd reports it, or None when it has no task."""
    for line in ctr(socket, "tasks", "ls").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == container_id:
            return int(parts[1]), parts[2]
    return None


def _config(node_dir: Path, socket: Path) -> Path:
    path = node_dir / "containerd.toml"
    path.write_text(
        "\n".join(
            (
                "version = 2",
                f'root = "{node_dir / "containerd-root"}"',
                f'state = "{node_dir / "containerd-state"}"',
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                "[grpc]",
                f'  address = "{socket}"',
                "[ttrpc]",
                f'  address = "{socket}.ttrpc"',
                "[debug]",
                '  address = ""',
                "[metrics]",
                '  address = ""',
                "",
            )
        ),
        encoding="utf-8",
    )
    return path


def _wait_ready(record: processes.ProcessRecord, socket: str) -> None:
    """Wait until containerd answers on its socket; LabError with its log when it exits or never answers."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not processes.is_running(record):
            raise LabError(f"containerd exited at start: {log_tail(Path(record.log), 10)}")
        if Path(socket).is_socket():
            try:
                ctr(socket, "version", timeout=5)
                return
            except LabError:
                pass
        time.sleep(0.1)
    raise LabError(f"containerd did not answer on {socket} within {_START_TIMEOUT_S:.0f} s")


def cri_labels(pod: PodContainer) -> dict[str, str]:
    """The container labels containerd's CRI plugin stores (kubelet's labels plus the kind)."""
    return {
        "io.cri-containerd.kind": "container",
        "io.kubernetes.container.name": pod.name,
        "io.kubernetes.pod.name": pod.pod_name,
        "io.kubernetes.pod.namespace": pod.namespace,
        "io.kubernetes.pod.uid": pod.pod_uid,
    }


def cri_annotations(pod: PodContainer) -> dict[str, str]:
    """The OCI annotations the CRI plugin writes into the container's spec."""
    return {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": pod.name,
        "io.kubernetes.cri.image-name": pod.image,
        "io.kubernetes.cri.sandbox-id": hashlib.sha256(pod.pod_uid.encode()).hexdigest(),
        "io.kubernetes.cri.sandbox-name": pod.pod_name,
        "io.kubernetes.cri.sandbox-namespace": pod.namespace,
        "io.kubernetes.cri.sandbox-uid": pod.pod_uid,
    }


def cgroup_parent(node_dir: Path) -> str:
    """A cgroup parent unique to this lab folder, so two labs on one machine never share a cgroup."""
    return f"/eksir-lab-{hashlib.sha256(str(node_dir.resolve()).encode()).hexdigest()[:12]}"


def start(node_dir: Path, instance_id: str, pod: PodContainer) -> NodeRuntime:
    """Start containerd, import the locally built image and run the privileged container; LabError on failure.

    The caller stops everything with `stop(node_dir)` on any failure (processes are recorded as they start).
    """
    node_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("containerd-root", "containerd-state"):  # a crashed run's metadata; teardown left no mount
        shutil.rmtree(node_dir / stale, ignore_errors=True)
    socket = node_dir / "containerd.sock"
    binary = shutil.which("containerd") or "containerd"
    record = processes.start_process(
        node_dir,
        "containerd",
        [binary, "--config", str(_config(node_dir, socket))],
        0,
        node_dir / "containerd.log",
    )
    _wait_ready(record, str(socket))
    archive = node_dir / "image.tar"
    image_id = node_image.image_archive(pod.image, archive)
    ctr(str(socket), "images", "import", str(archive))
    parent = cgroup_parent(node_dir)
    # runc keeps its state under one root per lab: the default (/run/containerd/runc/<namespace>) is shared by
    # every containerd on the machine, and two labs (same seed, same container id) would collide there
    runc_root = node_dir / "runc"
    args = ["run", "--detach", "--privileged", "--runc-root", str(runc_root)]
    args += ["--cgroup", f"{parent}/pod{pod.pod_uid}/{pod.container_id}"]
    args += [f"--label={k}={v}" for k, v in cri_labels(pod).items()]
    args += [f"--annotation={k}={v}" for k, v in cri_annotations(pod).items()]
    ctr(str(socket), *args, pod.image, pod.container_id, *pod.command)
    state = task_state(str(socket), pod.container_id)
    if state is None or state[1] != "RUNNING":
        raise LabError(f"the attacker's container did not start on the lab node ({state})")
    return NodeRuntime(
        instance_id=instance_id,
        socket=str(socket),
        root=str(node_dir),
        container_id=pod.container_id,
        pid=state[0],
        image=pod.image,
        image_id=image_id,
        cgroup_parent=parent,
    )
