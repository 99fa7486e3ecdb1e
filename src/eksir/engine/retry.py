"""Bounded exponential backoff for TemporaryError (throttling, 5xx, 409 conflicts).

Why bounded: at 3 a.m. a step that cannot succeed must fail visibly within seconds to minutes, so the
responder can act and independent steps are not held up; an unbounded retry would hide the failure.
Only TemporaryError is retried: a denied permission or a missing resource does not heal by waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eksir.errors import TemporaryError

T = TypeVar("T")
OnRetry = Callable[[int, TemporaryError, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    verify_attempts: int = 4
    """How often verify may say "not yet" before the step fails (IAM and EKS are eventually consistent)."""

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))

    def call(self, fn: Callable[[], T], on_retry: OnRetry | None = None) -> T:
        """Call `fn`; on TemporaryError wait and retry up to `attempts` times, then re-raise the last one."""
        attempt = 1
        while True:
            try:
                return fn()
            except TemporaryError as exc:
                if attempt >= self.attempts:
                    raise
                wait = self.delay(attempt)
                if on_retry is not None:
                    on_retry(attempt, exc, wait)
                time.sleep(wait)
                attempt += 1
