"""Derive requirements/runtime.lock (the worker image's lock) from requirements/dev.lock.

Why derived and not resolved: the image must run the versions the suite passed with, and nothing here may
reach a registry. The packages eksir needs at run time are the closure of `[project] dependencies` (plus
the build backend of requirements/build.in, which installs eksir itself without build isolation) over the
dependency edges uv writes into the lock (`# via X`: X requires this package). Each kept entry is copied with
its pins, markers and every hash, so `pip install --require-hashes` checks the same bytes as `make test`.
An edge written for an extra of X is kept too (the lock does not say which edges need an extra): the image
may carry a package more than it needs, never one less.

Usage: python scripts/runtime_lock.py [--check]. `make lock` runs it; `--check` exits 1 when it is stale.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_LOCK = REPO / "requirements" / "dev.lock"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"
HEADER = (
    "# Derived from requirements/dev.lock by scripts/runtime_lock.py (run by `make lock`): eksir's run-time\n"
    "# dependencies and the build backend that installs it, with the dev lock's pins and hashes. The worker\n"
    "# image (Dockerfile) installs it with --require-hashes. Do not edit by hand.\n"
)
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def blocks(lock: str) -> dict[str, str]:
    """Each entry's text (requirement line, hashes, `# via` comments) by canonical name, in lock order."""
    found: dict[str, str] = {}
    current = ""
    for line in lock.splitlines(keepends=True):
        match = _NAME.match(line)
        if match:
            current = canonical(match[1])
            found[current] = ""
        if current:
            found[current] += line
    return found


def parents(block: str) -> set[str]:
    """The names in an entry's `# via` comments (`eksir (pyproject.toml)` -> eksir, `-r file` kept as is)."""
    vias = re.findall(r"#[ \t]+via[ \t]+(.+)|#[ \t]{3,}(.+)", block)
    return {
        canonical(n.split(" (")[0].strip()) if not n.startswith("-r") else n.strip()
        for pair in vias
        for n in pair
        if n
    }


def roots() -> set[str]:
    """eksir's run-time dependencies (no extras) and requirements/build.in's packages."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {canonical(_NAME.match(dep)[1]) for dep in project["dependencies"]}  # type: ignore[index]
    build = (REPO / "requirements" / "build.in").read_text(encoding="utf-8").splitlines()
    return names | {canonical(_NAME.match(line)[1]) for line in build if _NAME.match(line)}  # type: ignore[index]


def derive(lock: str) -> str:
    """The runtime lock's text: the closure of `roots()` over the lock's `# via` edges."""
    entries = blocks(lock)
    keep = roots() & set(entries)
    grew = True
    while grew:
        grew = False
        for name, block in entries.items():
            if name not in keep and parents(block) & keep:
                keep.add(name)
                grew = True
    return HEADER + "".join(block for name, block in entries.items() if name in keep)


def main(argv: list[str]) -> int:
    text = derive(DEV_LOCK.read_text(encoding="utf-8"))
    if "--check" in argv:
        stale = not RUNTIME_LOCK.exists() or RUNTIME_LOCK.read_text(encoding="utf-8") != text
        if stale:
            print("requirements/runtime.lock is stale: run python scripts/runtime_lock.py", file=sys.stderr)
        return int(stale)
    RUNTIME_LOCK.write_text(text, encoding="utf-8")
    print(f"runtime_lock: {text.count('==')} packages in {RUNTIME_LOCK.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
