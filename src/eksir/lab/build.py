"""Build the lab's kube-apiserver, etcd and kubectl from the official Go modules, once per pin, into a cache.

Why build instead of download: only package registries are reachable (the Go module proxy is one), and a build
from pinned go.mod + go.sum is reproducible and checksum-verified by Go itself. The cache lives outside the
repository (`$EKSIR_CACHE_DIR`, else `$XDG_CACHE_HOME/eksir`, else `~/.cache/eksir`, then `bin/<pin-hash>/`),
so a fresh clone and CI on the same machine reuse it; the pin hash changes whenever a version, a flag or a
go.mod/go.sum/main.go changes, so a pin change rebuilds. A file lock serialises concurrent builders (parallel
test sessions): the second waits and then reuses the first one's result. POSIX only (fcntl).

Why so much progress: a first build is minutes of silence otherwise. The builder says what it builds (program
and version), where the log is, how long it is expected to take on this project's 2-core machine, and then
the elapsed time every few seconds until the build ends.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from eksir.errors import LabError
from eksir.lab import pins

Progress = Callable[[str], None]
GO_INSTALL_FIX = "install Go >= {min} from https://go.dev/dl and put it on PATH"
_BUILD_TIMEOUT_S = 3600.0
_HEARTBEAT_S = 15.0
_LOG_TAIL_LINES = 25
_GO_VERSION = re.compile(r"go(\d+)\.(\d+)")


@dataclass(frozen=True)
class LabBinaries:
    """Paths of the built binaries: the two servers and the matching kubectl."""

    kube_apiserver: Path
    etcd: Path
    kubectl: Path


def cache_root(cache_dir: Path | None = None) -> Path:
    """The eksir cache root: the argument, else $EKSIR_CACHE_DIR, else the XDG cache dir."""
    if cache_dir is not None:
        return cache_dir
    if env := os.environ.get("EKSIR_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "eksir"


def binaries_dir(cache_dir: Path | None = None) -> Path:
    """Folder holding the binaries for the current pins: `<cache root>/bin/<pin-hash>`."""
    return cache_root(cache_dir) / "bin" / pins.pin_hash()


def ensure_binaries(cache_dir: Path | None = None, progress: Progress | None = None) -> LabBinaries:
    """Return the lab binaries for the current pins, building whichever is missing.

    Raises LabError when Go is missing or too old, or when a build fails (with the log's last lines).
    """
    report = progress or (lambda _msg: None)
    target = binaries_dir(cache_dir)
    paths = {p.name: target / p.name for p in pins.PROGRAMS}
    if not all(_is_executable(path) for path in paths.values()):
        target.mkdir(parents=True, exist_ok=True)
        with _build_lock(target, report):
            missing = [p for p in pins.PROGRAMS if not _is_executable(paths[p.name])]
            if missing:
                go = find_go()
                report(build_plan_line(missing, target))
                for program in missing:
                    build_program(go, program, target, report)
    return LabBinaries(kube_apiserver=paths["kube-apiserver"], etcd=paths["etcd"], kubectl=paths["kubectl"])


def minutes(seconds: float) -> str:
    """`about 7 min` / `about 45 s`: an expectation, so rounded."""
    return f"about {round(seconds / 60)} min" if seconds >= 120 else f"about {round(seconds)} s"


def build_plan_line(programs: list[pins.GoProgram], target: Path) -> str:
    """What is about to be built, how long it should take, and where it goes (the first progress line)."""
    names = ", ".join(f"{p.name} {p.version}" for p in programs)
    expected = sum(p.expected_build_s for p in programs)
    return (
        f"first run: building {names} from the pinned Go modules, {minutes(expected)} on 2 cores "
        f"(faster with more); cached afterwards in {target}"
    )


def find_go() -> str:
    """Locate a Go toolchain recent enough for the pinned modules, or explain how to get one."""
    minimum = pins.min_go_version()
    fix = GO_INSTALL_FIX.format(min=f"{minimum[0]}.{minimum[1]}")
    go = shutil.which("go")
    if go is None:
        raise LabError(f"the lab builds kube-apiserver and etcd from source but `go` is not on PATH: {fix}")
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise LabError(f"`{go} env GOVERSION` failed ({exc}): {fix}") from exc
    found = parse_go_version(out)
    if found is not None and found < minimum:
        raise LabError(f"{go} is {out.strip()}, too old for the lab: {fix}")
    return go


def parse_go_version(text: str) -> tuple[int, int] | None:
    """(major, minor) from `go1.26.8`-style text; None for development builds we cannot order."""
    match = _GO_VERSION.search(text)
    if match is None or text.strip().startswith("devel"):
        return None
    return int(match.group(1)), int(match.group(2))


def build_program(go: str, program: pins.GoProgram, target: Path, progress: Progress) -> Path:
    """Build one program from its packaged Go module into `target/<name>`; raise LabError on failure."""
    src = target / "src" / program.name
    src.mkdir(parents=True, exist_ok=True)
    for name in pins.GO_SOURCE_FILES:
        (src / name).write_bytes(pins.source_dir(program.name).joinpath(name).read_bytes())
    return build_module(
        go,
        src,
        target / program.name,
        ldflags=program.ldflags,
        progress=progress,
        version=program.version,
        expected_s=program.expected_build_s,
    )


def build_module(
    go: str,
    src: Path,
    output: Path,
    *,
    ldflags: tuple[str, ...],
    progress: Progress,
    version: str = "",
    expected_s: float = 0.0,
) -> Path:
    """Run `go build -trimpath` (CGO off, read-only go.mod) in `src`, installing atomically at `output`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    log_path = output.parent / f"build-{output.name}.log"
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    cmd = [go, "build", "-trimpath", "-mod=readonly", "-ldflags", " ".join(ldflags), "-o", str(tmp), "."]
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOWORK": "off"}
    label = " ".join(p for p in (output.name, version) if p)
    expected = f", expected {minutes(expected_s)}" if expected_s else ""
    progress(f"building {label} with Go{expected}; log: {log_path}")
    started = time.monotonic()
    with log_path.open("wb") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        tick = _ticker(label, expected_s, progress)
        returncode = _run_with_heartbeat(cmd, src, env, log=log, name=output.name, progress=tick)
    elapsed = time.monotonic() - started
    if returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise LabError(
            f"building {output.name} failed (exit {returncode}) after {elapsed:.0f} s; full log: {log_path}\n"
            + log_tail(log_path, _LOG_TAIL_LINES)
        )
    os.replace(tmp, output)
    progress(f"built {label} in {elapsed:.1f} s")
    return output


def _ticker(label: str, expected_s: float, progress: Progress) -> Callable[[float], None]:
    """The heartbeat line: elapsed time, against the expectation when there is one."""

    def tick(waited: float) -> None:
        of = f" of {minutes(expected_s)} expected" if expected_s else ""
        progress(f"building {label}: {waited:.0f} s elapsed{of}")

    return tick


def _run_with_heartbeat(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    log: BinaryIO,
    name: str,
    progress: Callable[[float], None],
) -> int:
    """Run the build, calling `progress(elapsed)` every few seconds; never leave the compiler running."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    except OSError as exc:
        raise LabError(f"could not run {cmd[0]}: {exc}") from exc
    try:
        while True:
            try:
                return proc.wait(timeout=_HEARTBEAT_S)
            except subprocess.TimeoutExpired:
                waited = time.monotonic() - started
                if waited > _BUILD_TIMEOUT_S:
                    raise LabError(f"building {name} took longer than {_BUILD_TIMEOUT_S:.0f} s") from None
                progress(waited)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def log_tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log file, or a note that it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def _build_lock(target: Path, progress: Progress) -> Iterator[None]:
    """Hold an exclusive lock on the pin folder so parallel sessions build once, not twice."""
    with (target / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another eksir process building the lab binaries in {target}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
