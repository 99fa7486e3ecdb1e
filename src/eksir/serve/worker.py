"""The worker loop: long-poll, keep the message invisible while its case is worked on, delete only after the
case records the outcome.

Why delete last: a worker killed at any point leaves its message in the queue; it comes back after the
visibility timeout and the next worker continues the case from its record (the engine's resume: a step found
`applying` is checked, never blindly applied again). Why a heartbeat: a response takes longer than any
sensible visibility timeout, so the message is extended every `visibility / 3` seconds while it is worked on.

SIGTERM (the platform stopping a task) stops receiving; the steps running finish and the gate starts no new
one (cli/serve_gate.py), the case is handed over (`HandOverError`: the message is made visible again at once,
the next worker resumes the case), leases are released as their blocks exit, and the process exits 0.
A message that is not a handled finding is recorded (rejects log) and sent to the dead-letter queue with the
reason as a message attribute; one that fails `max_receives` times goes there too, with its last error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from eksir.clients.sqs import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, Queue, Received
from eksir.errors import EksirError, TemporaryError
from eksir.serve.intake import ContinueIntake, FindingIntake, Intake, Reject, classify, digest
from eksir.serve.metrics import Metrics
from eksir.serve.records import REJECTS, FleetLog

log = logging.getLogger("eksir.serve")


class HandOverError(TemporaryError):
    """The worker is stopping and left the rest of a case to the next worker: release the message now."""


class Handler(Protocol):
    """What a message does to the cases; returns the outcome word recorded in the metrics."""

    def finding(self, intake: FindingIntake, message_id: str) -> str: ...
    def resume(self, intake: ContinueIntake, message_id: str) -> str: ...


@dataclass(frozen=True)
class Settings:
    wait_seconds: int = 20
    visibility: int = 60
    max_receives: int = 5
    batch: int = 1


class Worker:
    """`concurrency` threads each running `poll_once` until `stop()`."""

    def __init__(
        self,
        queue: Queue,
        handler: Handler,
        *,
        fleet_log: FleetLog,
        metrics: Metrics,
        settings: Settings,
        dead_letter: Queue | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.fleet_log = fleet_log
        self.metrics = metrics
        self.settings = settings
        self.dead_letter = dead_letter
        self.stopping = stopping or threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self, concurrency: int) -> None:
        """Run until stopped; returns when every thread has finished its message in hand."""
        threads = [
            threading.Thread(target=self._loop, name=f"eksir-serve-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except EksirError as exc:  # the queue itself failed: say so, back off, keep serving
                log.warning("eksir serve: %s", exc.message)
                self.stopping.wait(2.0)

    def poll_once(self) -> int:
        """Receive (long poll) and work each message; returns how many were received."""
        s = self.settings
        wait = min(s.wait_seconds, 2) if self.stopping.is_set() else s.wait_seconds
        messages = self.queue.receive(s.batch, wait, s.visibility)
        for message in messages:
            self.metrics.add("received")
            self.metrics.begin()
            try:
                self._work(message)
            finally:
                self.metrics.end(message.sent_at_ms)
        return len(messages)

    def _work(self, message: Received) -> None:
        intake = classify(message.body)
        if isinstance(intake, Reject):
            self._reject(message, intake)
            return
        with Heartbeat(
            lambda: self.queue.extend(message, self.settings.visibility), self.settings.visibility
        ):
            try:
                outcome = self._handle(intake, message)
            except HandOverError as exc:
                log.warning("eksir serve: %s", exc.message)
                self.queue.extend(message, 0)  # visible again at once, for a worker that is not stopping
                return
            except EksirError as exc:
                self._failed(message, exc.message)
                return
        self.metrics.add(outcome)
        self.queue.delete(message)

    def _handle(self, intake: Intake, message: Received) -> str:
        if isinstance(intake, ContinueIntake):
            return self.handler.resume(intake, message.message_id)
        assert isinstance(intake, FindingIntake)
        return self.handler.finding(intake, message.message_id)

    def _failed(self, message: Received, error: str) -> None:
        """Leave it for another try (visibility timeout); after `max_receives`, dead-letter it."""
        self.metrics.add("failed")
        log.warning(
            "eksir serve: message %s failed (receive %d): %s",
            message.message_id,
            message.receive_count,
            error,
        )
        if message.receive_count >= self.settings.max_receives:
            self._reject(
                message, Reject(f"failed: {message.receive_count} receives, last error: {error[:300]}")
            )

    def _reject(self, message: Received, reject: Reject) -> None:
        self.metrics.add("rejected")
        self.fleet_log.append(
            REJECTS,
            {
                "message_id": message.message_id,
                "reason": reject.reason,
                "receive_count": message.receive_count,
                "sha256": digest(message.body),
                "excerpt": message.body[:200],
                "dead_letter": self.dead_letter.url if self.dead_letter else None,
            },
        )
        if self.dead_letter is not None:
            attributes = {REASON_ATTRIBUTE: reject.reason, SOURCE_ATTRIBUTE: message.message_id}
            self.dead_letter.send(message.body, attributes)
            self.queue.delete(message)
        elif message.receive_count >= self.settings.max_receives:
            self.queue.delete(message)  # no dead-letter queue: recorded above, nowhere else to go


class Heartbeat:
    """Calls `extend` every `visibility / 3` seconds while the block runs (errors are logged, not raised)."""

    def __init__(self, extend: Callable[[], None], visibility: int) -> None:
        self.extend = extend
        self.every = max(1.0, visibility / 3)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="eksir-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.extend()
            except EksirError as exc:
                log.warning("eksir serve: heartbeat failed: %s", exc.message)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
