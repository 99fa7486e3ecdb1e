"""The worker loop: long-poll, keep the message invisible while its case is worked on, delete only after the
case records the outcome.

Why delete last: a worker killed at any point leaves its message in the queue; it comes back after the
visibility timeout and the next worker continues the case from its record (the engine's resume: a step found
`applying` is checked, never blindly applied again). Why a heartbeat: a response takes longer than any
sensible visibility timeout, so the message is extended every `visibility / 3` seconds while it is worked on.

Why up to 10 messages per receive (`Settings.batch`) and one DeleteMessageBatch for those handled: most of
a burst is GuardDuty repeating itself, and a repeat of a case this process holds is recorded with one append
(cli/serve_case.py `quick`), so per-message receive and delete calls were most of its cost. Such cheap
messages are worked first; the others (a new incident, a continuation) one after the other, the rest of the
batch kept invisible by the heartbeat meanwhile. The price: up to 9 messages wait behind a response in this
worker while another worker may be idle (bounded by `--batch`; `--batch 1` is the old one-at-a-time loop).

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
    def quick(self, intake: FindingIntake, message_id: str) -> str | None:
        """Record the message at once when that is cheap (a repeat of a case this process holds); None
        when it needs the full path (`finding`)."""
        ...

    def resume(self, intake: ContinueIntake, message_id: str) -> str: ...


@dataclass(frozen=True)
class Settings:
    wait_seconds: int = 20
    visibility: int = 60
    max_receives: int = 5
    batch: int = 10
    """Messages per receive (1-10): cheap ones (repeats) are worked first and deleted together."""


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
        """Receive (long poll) up to `batch` messages and work them; returns how many were received.

        Cheap messages first (a repeat the handler records at once, a reject), then the ones that open or
        run a case, one after the other; handled messages are deleted together (DeleteMessageBatch) after
        each of those passes, and the heartbeat extends every message still in hand."""
        s = self.settings
        wait = min(s.wait_seconds, 2) if self.stopping.is_set() else s.wait_seconds
        messages = self.queue.receive(s.batch, wait, s.visibility)
        if not messages:
            return 0
        hand = InHand(self.queue, messages)
        for _message in messages:
            self.metrics.add("received")
            self.metrics.begin()
        try:
            with Heartbeat(lambda: hand.extend(s.visibility), s.visibility):
                slow = [(m, i) for m in messages if (i := self._quick(m, hand)) is not None]
                hand.flush()
                for message, intake in slow:
                    if self.stopping.is_set():  # not started: for a worker that is not stopping
                        hand.give_back(message)
                        continue
                    self._work(message, intake, hand)
                    hand.flush()
        finally:
            for message in messages:
                self.metrics.end(message.sent_at_ms)
        return len(messages)

    def _quick(self, message: Received, hand: InHand) -> Intake | None:
        """Work `message` now when that is cheap; returns its intake when it needs the full path."""
        intake = classify(message.body)
        if isinstance(intake, Reject):
            hand.done(message, self._reject(message, intake))
            return None
        if not isinstance(intake, FindingIntake):
            return intake
        try:
            outcome = self.handler.quick(intake, message.message_id)
        except EksirError as exc:  # the full path tries again and records a failure properly
            log.info("eksir serve: message %s: quick path: %s", message.message_id, exc.message)
            return intake
        if outcome is None:
            return intake
        self.metrics.add(outcome)
        hand.done(message, True)
        return None

    def _work(self, message: Received, intake: Intake, hand: InHand) -> None:
        try:
            outcome = self._handle(intake, message)
        except HandOverError as exc:
            log.warning("eksir serve: %s", exc.message)
            hand.give_back(message)
            return
        except EksirError as exc:
            hand.done(message, self._failed(message, exc.message))
            return
        self.metrics.add(outcome)
        hand.done(message, True)

    def _handle(self, intake: Intake, message: Received) -> str:
        if isinstance(intake, ContinueIntake):
            return self.handler.resume(intake, message.message_id)
        assert isinstance(intake, FindingIntake)
        return self.handler.finding(intake, message.message_id)

    def _failed(self, message: Received, error: str) -> bool:
        """Leave it for another try (visibility timeout); after `max_receives`, dead-letter it. Returns
        whether the message is to be deleted."""
        self.metrics.add("failed")
        log.warning(
            "eksir serve: message %s failed (receive %d): %s",
            message.message_id,
            message.receive_count,
            error,
        )
        if message.receive_count >= self.settings.max_receives:
            return self._reject(
                message, Reject(f"failed: {message.receive_count} receives, last error: {error[:300]}")
            )
        return False

    def _reject(self, message: Received, reject: Reject) -> bool:
        """Record the reject and dead-letter it; returns whether the message is to be deleted."""
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
            return True
        # no dead-letter queue: after max_receives it is recorded above, with nowhere else to go
        return message.receive_count >= self.settings.max_receives


class InHand:
    """The messages of one receive that the worker still holds: the heartbeat extends them all, and the
    handled ones are deleted together (DeleteMessageBatch), only after their cases recorded them.

    A message whose delete fails is only logged: it comes back after its visibility timeout and is then
    recognised as already recorded (a repeat is recorded once per finding id, count and updatedAt)."""

    def __init__(self, queue: Queue, messages: list[Received]) -> None:
        self.queue = queue
        self._held = list(messages)
        self._to_delete: list[Received] = []
        self._guard = threading.Lock()

    def done(self, message: Received, delete: bool) -> None:
        """The worker is finished with `message`: to be deleted, or left to come back (not extended)."""
        with self._guard:
            self._held = [m for m in self._held if m.receipt != message.receipt]
            if delete:
                self._to_delete.append(message)

    def give_back(self, message: Received) -> None:
        """Not worked here: visible again at once, for a worker that is not stopping."""
        self.done(message, False)
        self.queue.extend(message, 0)

    def flush(self) -> None:
        """Delete what is handled; raises the queue's errors (the messages then simply come back)."""
        with self._guard:
            batch, self._to_delete = self._to_delete, []
        if not batch:
            return
        failed = self.queue.delete_batch(batch)
        if failed:
            log.warning("eksir serve: %d message(s) not deleted (they come back): %s", len(failed), failed)

    def extend(self, seconds: int) -> None:
        """The heartbeat: every message still held (being worked or waiting its turn) stays invisible."""
        with self._guard:
            held = list(self._held)
        if held and (failed := self.queue.extend_batch(held, seconds)):
            log.warning("eksir serve: visibility not extended for %s", failed)


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
