"""Start, find and stop the lab's server processes by what is recorded on disk.

Why a file and not in-memory handles: `eksir lab up` returns while the servers keep running, and `eksir lab
down` runs in another process later. Each server runs in its own session (process group), so a Ctrl-C in the
terminal does not kill it half-way and `stop_all` can end the whole group. Before signalling a recorded pid we
compare its command line with the recorded one, so a pid the kernel reused for something else is never killed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import threading
import time
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum
from pathlib import Path

from eksir.errors import LabError
from eksir.lab.build import log_tail

PROCESSES_FILE = "processes.json"
_POLL_S = 0.05
_KILL_WAIT_S = 5.0
_EXEC_SETTLE_S = 2.0


class ProcState(StrEnum):
    """What became of a recorded server process."""

    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class ProcessRecord:
    """One started server: enough to find it again from another process and to stop it safely."""

    name: str
    pid: int
    cmdline: tuple[str, ...]
    port: int
    log: str


@dataclass(frozen=True)
class ProcessStatus:
    """A recorded process, whether it still runs, and the end of its log (why it exited)."""

    record: ProcessRecord
    state: ProcState
    log_tail: str


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now (the kernel picks them).

    A port is handed out at most once per process: `eksir lab up` starts the control plane in one thread while
    moto starts in another, and each picks its ports before its server binds them; without this the kernel may
    offer both the same just-closed port, and a client meant for moto would talk to the EKS authenticator.
    """
    with contextlib.ExitStack() as stack, _handed_out_lock:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in _handed_out:
                ports.append(port)
        _handed_out.update(ports)
        return ports


class PortInUseError(LabError):
    """A port the lab meant to use is taken: a lost race if the lab picked it, a conflict if a user did."""


def ensure_port_free(port: int, name: str) -> None:
    """Raise PortInUseError, with the fix, when something already listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise LabError(f"cannot use 127.0.0.1:{port} for {name}: {exc.strerror}") from exc
            raise PortInUseError(
                f"port 127.0.0.1:{port} for {name} is already in use; find the owner with "
                f"`ss -ltnp 'sport = :{port}'` (or `lsof -iTCP:{port} -sTCP:LISTEN`), stop it or a lab left "
                "running (`eksir lab down`), or let the lab pick free ports"
            ) from exc


def start_process(workdir: Path, name: str, cmdline: list[str], port: int, log_path: Path) -> ProcessRecord:
    """Start `cmdline` in a new session with output to `log_path`, and record it in processes.json."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "ETCD"))}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawn(
            cmdline[0],
            cmdline,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    except OSError as exc:
        raise LabError(f"cannot start {name} ({cmdline[0]}): {exc.strerror or exc}") from exc
    finally:
        os.close(log_fd)
    record = ProcessRecord(name=name, pid=pid, cmdline=tuple(cmdline), port=port, log=str(log_path))
    _write_records(workdir, [*read_records(workdir), record])
    return record


def read_records(workdir: Path) -> list[ProcessRecord]:
    """The processes recorded in `workdir`, oldest first; empty when none are recorded."""
    path = workdir / PROCESSES_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [
            ProcessRecord(
                name=str(r["name"]),
                pid=int(r["pid"]),
                cmdline=tuple(str(a) for a in r["cmdline"]),
                port=int(r["port"]),
                log=str(r["log"]),
            )
            for r in raw
        ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path} is unreadable ({exc}); stop the servers by hand and delete it") from exc


def is_running(record: ProcessRecord) -> bool:
    """True when `record.pid` is alive and still runs the recorded command line (not a reused pid).

    A process that has not finished exec yet shows an empty command line (or ours): wait for it to settle.
    """
    if _reap(record.pid) is _Child.EXITED:
        return False
    return _settled_cmdline(record.pid) == record.cmdline


def _settled_cmdline(pid: int) -> tuple[str, ...] | None:
    """The command line of `pid` once any exec in progress has finished (empty, or ours, until then)."""
    ours = _cmdline(os.getpid())
    deadline = time.monotonic() + _EXEC_SETTLE_S
    cmdline = _cmdline(pid)
    while cmdline in {(), ours} and time.monotonic() < deadline:
        time.sleep(0.01)
        if _reap(pid) is _Child.EXITED:
            return None
        cmdline = _cmdline(pid)
    return cmdline


def status(workdir: Path) -> list[ProcessStatus]:
    """Each recorded process as running or exited; an exited one comes with its last log lines."""
    result = []
    for record in read_records(workdir):
        running = is_running(record)
        tail = "" if running else log_tail(Path(record.log), 15)
        result.append(ProcessStatus(record, ProcState.RUNNING if running else ProcState.EXITED, tail))
    return result


def stop_all(workdir: Path, timeout: float = 15.0) -> None:
    """Stop every recorded process, newest first: SIGTERM, then SIGKILL after `timeout`; verify they are gone.

    Raises LabError if a process survives SIGKILL. The record file is removed once all are gone.
    """
    survivors = []
    for record in reversed(read_records(workdir)):
        if not _stop_one(record, timeout):
            survivors.append(record)
    if survivors:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in survivors)
        raise LabError(f"could not stop {names}; kill them by hand (`kill -9 <pid>`)")
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        (workdir / PROCESSES_FILE).unlink()


def _stop_one(record: ProcessRecord, timeout: float) -> bool:
    """Terminate one process group politely, then forcibly; True once the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, _KILL_WAIT_S)):
        if not is_running(record):
            return True
        _signal_group(record.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_running(record):
                return True
            time.sleep(_POLL_S)
    return not is_running(record)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the server leads; fall back to the process itself."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class _Child(Enum):
    ALIVE = "alive"
    EXITED = "exited"
    NOT_OURS = "not-ours"


def _reap(pid: int) -> _Child:
    """Reap our own exited child so it does not linger as a zombie, and say what `pid` is to us."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return _Child.NOT_OURS
    return _Child.EXITED if done == pid else _Child.ALIVE


def _cmdline(pid: int) -> tuple[str, ...] | None:
    """The live command line of `pid` (empty for a zombie), or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def _write_records(workdir: Path, records: list[ProcessRecord]) -> None:
    """Replace processes.json atomically so a reader never sees half a file."""
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / f".{PROCESSES_FILE}.tmp"
    tmp.write_text(json.dumps([asdict(r) for r in records], indent=2), encoding="utf-8")
    os.replace(tmp, workdir / PROCESSES_FILE)
