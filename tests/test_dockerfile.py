"""The worker image's Dockerfile, checked without a Docker engine (there is none here or in CI).

What is checked is what a review would: the base image is pinned, every package comes from the hash-checked
lock, eksir adds no unpinned dependency, the final stage runs as a non-root user, the entry point is
`eksir serve`, and every file it copies exists. Whether it builds is left to a machine with Docker.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(w[0].upper(), w[1]) for line in joined.splitlines() if (w := line.strip().split(None, 1))]


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    start = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[start:]


def test_every_base_image_is_pinned_to_a_full_version_or_a_digest() -> None:
    images = [args.split()[0] for op, args in _instructions() if op == "FROM"]
    assert images
    for image in images:
        assert PINNED.match(image), image
        assert ":" in image.split("/")[-1] or "@sha256:" in image, f"{image} floats"


def test_packages_come_from_the_lock_with_hashes_and_eksir_adds_none() -> None:
    runs = [args for op, args in _instructions() if op == "RUN"]
    locked = [run for run in runs if "--require-hashes" in run]
    assert locked
    (lock,) = re.findall(r"-r (requirements/\S+)", locked[0])
    assert (REPO / lock).is_file()
    installs = [run for run in runs if "pip install" in run]
    assert all("--require-hashes" in run or "--no-deps" in run for run in installs)
    assert all("--no-deps" in part for run in installs for part in run.split("&&") if "pip install" in part)


def test_the_final_stage_runs_eksir_serve_as_a_non_root_user() -> None:
    final = _final_stage()
    users = [args for op, args in final if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    ops = [op for op, _ in final]
    assert ops.index("USER") > max(i for i, op in enumerate(ops) if op == "RUN")
    (entrypoint,) = [args for op, args in final if op == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["eksir", "serve"]


def test_every_copied_path_exists_and_the_build_context_admits_it() -> None:
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    admitted = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for op, args in _instructions():
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), source
                assert source.rstrip("/") in admitted, f"{source} is excluded by .dockerignore"
