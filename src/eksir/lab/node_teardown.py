"""Take the lab node's runtime down and prove nothing is left: no containerd, shim, container, mount, cgroup.

Why more than stopping containerd: its shims live on in their own process groups with the container's
processes, and the container's rootfs is an overlay mount in the host's mount namespace. So the containers
are killed and deleted through containerd first (the shim exits and unmounts), then the recorded processes
(the SSM agent stand-in and containerd) are stopped; whatever survived is found by what ties it to this lab
only (a shim's `-address <this lab's socket>`, a pid in this lab's cgroup, a mount under this lab's folder)
and ended by pid. Nothing is matched by a broad name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from eksir.errors import LabError
from eksir.lab import processes
from eksir.lab.node_runtime import cgroup_parent, ctr

CGROUP_ROOT = Path("/sys/fs/cgroup")
_EXIT_WAIT_S = 10.0


def _containerd_answers(socket: Path) -> bool:
    if not socket.is_socket():
        return False
    try:
        ctr(str(socket), "version", timeout=5)
    except LabError:
        return False
    return True


def _delete_containers(socket: str) -> None:
    """Kill every task, wait for it to stop, delete it and its container (the shim unmounts the rootfs).

    A paused task (`ssm.pause_container` ran) is resumed first: a frozen process does not act on SIGKILL.
    """
    rows = [line.split() for line in ctr(socket, "tasks", "ls").splitlines()[1:] if line.strip()]
    tasks = [row[0] for row in rows]
    for row in rows:
        with contextlib.suppress(LabError):
            if row[-1] == "PAUSED":
                ctr(socket, "tasks", "resume", row[0])
            ctr(socket, "tasks", "kill", "--signal", "SIGKILL", row[0])
    for task in tasks:
        deadline = time.monotonic() + _EXIT_WAIT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(LabError):
                ctr(socket, "tasks", "delete", task)
                break
            time.sleep(0.1)
    for container in ctr(socket, "containers", "ls", "--quiet").split():
        with contextlib.suppress(LabError):
            ctr(socket, "containers", "delete", container)


def _alive(pid: int) -> bool:
    """True for a process that exists and is not a zombie (a zombie holds nothing and runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _shims(socket: Path) -> list[int]:
    """Shims serving this lab's containerd: their command line names its socket."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(socket).encode() in args and any(b"containerd-shim" in a for a in args[:1]):
            found.append(int(entry.name))
    return [pid for pid in found if _alive(pid)]


def _cgroup_dirs(node_dir: Path) -> list[Path]:
    """This lab's cgroup folder in every hierarchy (v1: one per controller; v2: one), deepest first."""
    parent = cgroup_parent(node_dir).lstrip("/")
    roots = [CGROUP_ROOT / parent] + [d / parent for d in CGROUP_ROOT.iterdir() if d.is_dir()]
    found = [path for root in roots if root.is_dir() for path, _d, _f in os.walk(root)]
    return sorted({Path(p) for p in found}, key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids(node_dir: Path) -> list[int]:
    pids: set[int] = set()
    for folder in _cgroup_dirs(node_dir):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
    return sorted(pid for pid in pids if _alive(pid))


def _thaw(node_dir: Path) -> None:
    """Unfreeze this lab's cgroups (v1 freezer, v2 cgroup.freeze) so the SIGKILL that follows takes effect."""
    for folder in _cgroup_dirs(node_dir):
        for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            with contextlib.suppress(OSError):
                (folder / name).write_text(value)


def _mounts(node_dir: Path) -> list[str]:
    """Mount points under the node folder, deepest first (from this process's mount table)."""
    prefix = str(node_dir.resolve()) + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def leftovers(node_dir: Path) -> list[str]:
    """Everything of the node runtime still present: processes, mounts, cgroups (empty when all is gone)."""
    socket = node_dir / "containerd.sock"
    left = [f"containerd-shim pid {pid}" for pid in _shims(socket)]
    left += [f"container process pid {pid}" for pid in _cgroup_pids(node_dir)]
    left += [f"mount {point}" for point in _mounts(node_dir)]
    left += [f"cgroup {path}" for path in _cgroup_dirs(node_dir)]
    left += [
        f"{s.record.name} pid {s.record.pid}" for s in processes.status(node_dir) if s.state == "running"
    ]
    return left


def stop(node_dir: Path) -> None:
    """Stop the node runtime and remove its mounts and cgroups; raises LabError naming anything left."""
    if not node_dir.is_dir():
        return
    socket = node_dir / "containerd.sock"
    if _containerd_answers(socket):
        with contextlib.suppress(LabError):
            _delete_containers(str(socket))
    processes.stop_all(node_dir)
    _thaw(node_dir)
    for pid in [*_shims(socket), *_cgroup_pids(node_dir)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in _mounts(node_dir):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30, check=False)
    deadline = time.monotonic() + _EXIT_WAIT_S
    while (left := leftovers(node_dir)) and time.monotonic() < deadline:
        for folder in _cgroup_dirs(node_dir):
            with contextlib.suppress(OSError):
                folder.rmdir()
        time.sleep(0.1)
    if left:
        raise LabError(f"the lab node's runtime left {'; '.join(left[:8])}: end them by hand")
