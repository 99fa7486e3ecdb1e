"""The cheap test that keeps the hunt fast: does this decompressed file contain any principal token at all?

Almost every CloudTrail file in an account has nothing to do with the attacker, so the scan spends its time
inflating and rejecting. JSON parsing costs ~10x inflating; a substring test costs a fraction of it. Hyperscan
(optional `fast` extra) checks all tokens in one SIMD pass; without it, CPython's `bytes.__contains__`
runs once per token, which is as fast for the usual one to three tokens.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

hyperscan: Any
try:  # optional: the `fast` extra
    import hyperscan as _hyperscan

    hyperscan = _hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None

RECORD_MARKER = b'"eventVersion"'
"""Every CloudTrail record has exactly one eventVersion key: counting it counts records without parsing."""


class TokenMatcher:
    """Answers `any(token in data)` for a fixed token tuple, with the fastest engine installed."""

    def __init__(self, tokens: tuple[bytes, ...], *, engine: str = "auto") -> None:
        self.tokens = tokens
        self._db: Any = None
        self._scratch: Any = None
        self._terminated: type[BaseException] = RuntimeError
        self.engine = "python"
        if engine in ("auto", "hyperscan") and len(tokens) > 2:
            self._try_hyperscan(engine == "hyperscan")

    def _try_hyperscan(self, required: bool) -> None:
        if hyperscan is None:
            if required:
                raise ImportError("hyperscan is not installed (pip install 'eksir[fast]')")
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
        self.__init__(state["tokens"], engine=state["engine"] if state["engine"] == "hyperscan" else "python")  # type: ignore[misc]

    def search(self, data: bytes) -> bool:
        """True when at least one token occurs in `data`."""
        if not self.tokens:
            return False
        if self._db is None:
            return any(token in data for token in self.tokens)
        hits: list[int] = []

        def on_match(match_id: int, start: int, end: int, flags: int, context: object) -> bool:
            hits.append(match_id)
            return True  # stop at the first hit

        with contextlib.suppress(self._terminated):  # raised when the handler stops at the first hit
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch)
        return bool(hits)
