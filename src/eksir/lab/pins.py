"""Pinned versions of the lab's Go servers and the hash that names their build cache.

Why a hash over the sources as well as the versions: a change to go.mod, go.sum, main.go or the link flags
must produce a new cache folder, so a stale binary can never be reused after a pin change.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

KUBERNETES_VERSION = "v1.34.4"
# The etcd release kubeadm v1.34.4 deploys (cmd/kubeadm/app/constants: DefaultEtcdVersion = "3.6.5-0").
ETCD_VERSION = "v3.6.5"
GO_SOURCE_FILES: tuple[str, ...] = ("main.go", "go.mod", "go.sum")
_GO_DIRECTIVE = re.compile(r"^go\s+(\d+)\.(\d+)(?:\.\d+)?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class GoProgram:
    """One server binary the lab builds: its name, upstream version and link flags."""

    name: str
    version: str
    ldflags: tuple[str, ...]
    expected_build_s: int = 0
    """About how long the first build takes on this project's 2-core machine (shown, not enforced)."""


def _kube_version_flags() -> tuple[str, ...]:
    """Stamp the version the way the upstream release build does, so /version reports v1.34.4."""
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    flags: list[str] = []
    # component-base feeds /version; client-go feeds the user agent of the server's own loopback client.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


PROGRAMS: tuple[GoProgram, ...] = (
    GoProgram("etcd", ETCD_VERSION, ("-s", "-w"), expected_build_s=90),
    GoProgram(
        "kube-apiserver", KUBERNETES_VERSION, ("-s", "-w", *_kube_version_flags()), expected_build_s=330
    ),
    # Not a server: the version-matched CLI `eval "$(eksir lab env)"` puts on PATH to look at the lab by hand.
    GoProgram("kubectl", KUBERNETES_VERSION, ("-s", "-w", *_kube_version_flags()), expected_build_s=120),
)


def source_dir(name: str) -> Traversable:
    """The packaged Go module (main.go, go.mod, go.sum) for one program."""
    return resources.files("eksir.lab").joinpath("gobuild", name)


def min_go_version() -> tuple[int, int]:
    """The highest `go` directive across the shipped go.mod files: the oldest Go that can build the lab."""
    found = [(1, 0)]
    for program in PROGRAMS:
        text = source_dir(program.name).joinpath("go.mod").read_text(encoding="utf-8")
        match = _GO_DIRECTIVE.search(text)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return max(found)


def pin_hash() -> str:
    """A short digest of everything that determines the binaries: versions, flags, sources, platform."""
    payload: dict[str, object] = {
        "platform": [platform.system(), platform.machine()],
        "programs": [[p.name, p.version, list(p.ldflags)] for p in PROGRAMS],
        "files": {
            f"{p.name}/{f}": hashlib.sha256(source_dir(p.name).joinpath(f).read_bytes()).hexdigest()
            for p in PROGRAMS
            for f in GO_SOURCE_FILES
        },
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
