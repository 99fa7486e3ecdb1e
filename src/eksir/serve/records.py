"""The fleet's own records beside the cases: rejected messages and repeats of closed cases.

Why not inside a case: a reject has no case, and a closed case is frozen (store/frozen.py): its repeat is
recorded here and announced in the war room instead. One JSON line per entry, appended with O_APPEND in
a single write (whole lines even with several worker processes), attacker text bounded.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FLEET_DIR = ".fleet"
REJECTS = "rejects.jsonl"
CLOSED_REPEATS = "closed-repeats.jsonl"
_MAX_TEXT = 500


class FleetLog:
    """Appends JSON lines to `<cases-dir>/.fleet/<name>`."""

    def __init__(self, cases_dir: Path) -> None:
        self.root = cases_dir / FLEET_DIR
        self._guard = threading.Lock()

    def append(self, name: str, entry: dict[str, Any]) -> None:
        record = {"at": datetime.now(UTC).isoformat(), **_bounded(entry)}
        line = orjson.dumps(record) + b"\n"
        with self._guard:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def read(self, name: str) -> list[dict[str, Any]]:
        try:
            lines = (self.root / name).read_bytes().splitlines()
        except FileNotFoundError:
            return []
        return [orjson.loads(line) for line in lines if line.strip()]


def _bounded(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v[:_MAX_TEXT] if isinstance(v, str) else v for k, v in entry.items()}
