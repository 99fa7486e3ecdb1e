"""The cheap tests that keep the hunt fast: does this inflated file hold any principal token, and where?

Almost every CloudTrail file in an account has nothing to do with the attacker, so the scan spends its time
inflating and rejecting. JSON parsing costs ~10x inflating; a substring search costs a tenth of it.
StringZilla's SIMD search runs at about 10 GB/s here, twice CPython's `bytes.find`, which matters because
the search runs over every byte the hunt reads. Hyperscan (optional `fast` extra) checks many tokens in
one pass and wins once there are more than two.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import stringzilla

hyperscan: Any
try:  # optional: the `fast` extra
    import hyperscan as _hyperscan

    hyperscan = _hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None

RECORD_MARKER = b'"eventVersion"'
"""Every CloudTrail record has exactly one eventVersion key: counting it counts records without parsing."""

ENGINES = ("auto", "stringzilla", "hyperscan")
_HYPERSCAN_FROM = 3
"""Token count from which one Hyperscan pass beats one StringZilla pass per token."""


def count_records(data: bytes | bytearray) -> int:
    """How many CloudTrail records `data` holds, without parsing it (one SIMD pass)."""
    count: int = stringzilla.count(data, RECORD_MARKER)
    return count


class TokenMatcher:
    """Answers `any(token in data)` for a fixed token tuple, with the fastest engine installed."""

    def __init__(self, tokens: tuple[bytes, ...], *, engine: str = "auto") -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown search engine {engine!r}; expected one of {', '.join(ENGINES)}")
        self.tokens = tokens
        self._db: Any = None
        self._scratch: Any = None
        self._terminated: type[BaseException] = RuntimeError
        self.engine = "stringzilla"
        if engine == "hyperscan" or (engine == "auto" and len(tokens) >= _HYPERSCAN_FROM):
            self._try_hyperscan(engine == "hyperscan")

    def _try_hyperscan(self, required: bool) -> None:
        if hyperscan is None:
            if required:
                raise ImportError("hyperscan is not installed (pip install 'eksir[fast]')")
            return
        if not self.tokens:
            return
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        expressions = [re.escape(token) for token in self.tokens]
        database.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(expressions),
        )
        self._db = database
        self._scratch = hyperscan.Scratch(database)
        self._terminated = hyperscan.ScanTerminated
        self.engine = "hyperscan"

    def __getstate__(self) -> dict[str, Any]:
        """Only the tokens cross a process boundary; the compiled database is rebuilt on the other side."""
        return {"tokens": self.tokens, "engine": self.engine}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tokens"], engine=state["engine"])  # type: ignore[misc]

    def search(self, data: bytes | bytearray) -> bool:
        """True when at least one token occurs in `data`."""
        if self._db is None:
            find = stringzilla.find
            return any(find(data, token) >= 0 for token in self.tokens)
        hits: list[int] = []

        def on_match(match_id: int, start: int, end: int, flags: int, context: object) -> bool:
            hits.append(match_id)
            return True  # stop at the first hit

        with contextlib.suppress(self._terminated):  # raised when the handler stops at the first hit
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch)
        return bool(hits)

    def positions(self, data: bytes | bytearray) -> list[int]:
        """Every offset at which a token starts, in order (for the few files `search` let through)."""
        found: set[int] = set()
        find = stringzilla.find
        for token in self.tokens:
            at = find(data, token)
            while at >= 0:
                found.add(at)
                at = find(data, token, at + 1)
        return sorted(found)
