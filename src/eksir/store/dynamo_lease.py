"""One writer per shared case: a lease item per case in DynamoDB, with expiry, heartbeat and fencing token.

Why DynamoDB and not S3 alone: a worker that crashes must not wedge its case, so the lease expires
(`expires_at`), and a live holder keeps it by a heartbeat thread extending it every third of its lifetime.
Expiry alone would let a holder that was merely paused (GC, a stopped VM) wake up and write after another
took over; so every acquisition increments the item's `token` (never reset: release keeps the item), the
holder records its token in every event it writes, and checks the item still carries its token before each
append (`check`); that check reads the item only when less than a third of a lifetime remains before the
expiry this holder itself last wrote (acquire or heartbeat): before then nobody can have taken over (a
takeover is conditioned on the expiry having passed; the third is the margin for clock skew), and a holder
that was paused finds its own expiry near or past and reads the item. A stale holder is refused (exit 12);
the conditional event write in S3 keeps the chain linear even in the instant between the check and the
write, and `case verify` names an event written under an older token after a newer one.

Item (partition key `case_key`, a string: `<bucket>/<prefix>/<case-id>`): `token` (N), `owner` (a random id
per acquisition), `pid`, `host`, `command`, `since` and `expires_at` (epoch seconds, N). Acquire is one
UpdateItem conditioned on `attribute_not_exists(case_key) OR expires_at < :now`, so exactly one contender
wins and the token only grows. Clocks: expiry compares the writers' clocks, so the lease lifetime
(`EKSIR_LEASE_SECONDS`, default 30) must exceed any clock skew between workers by far.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eksir.clients.aws import aws_call
from eksir.errors import EksirError, NotFoundError
from eksir.store.lock import CaseLockedError, Lease

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

LEASE_SECONDS_ENV = "EKSIR_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0
WAIT_POLL_SECONDS = 1.0
CONDITION_FAILED = "ConditionalCheckFailedException"


class LeaseLostError(CaseLockedError):
    """This process's lease was taken over (it expired): its writes are refused (exit 12)."""


def lease_seconds() -> float:
    raw = os.environ.get(LEASE_SECONDS_ENV)
    return max(1.0, float(raw)) if raw else DEFAULT_LEASE_SECONDS


class DynamoCaseLock:
    """`CaseLock` (store/lock.py) over one DynamoDB item; `check` is the fencing test before each write."""

    def __init__(
        self,
        dynamo: DynamoDBClient,
        table: str,
        case_key: str,
        *,
        ttl: float | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.dynamo = dynamo
        self.table = table
        self.case_key = case_key
        self.ttl = ttl or lease_seconds()
        self.heartbeat = heartbeat
        self.owner = ""
        self.lease: Lease | None = None
        self.lost = False
        self._held_until = 0.0
        """The expiry this holder itself last wrote (acquire, extend): no takeover can come before it."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, command: str, *, wait: bool) -> Lease:
        """Take the lease (polling while `wait`); raises CaseLockedError naming the holder, NotFoundError
        when the table does not exist, PermissionDeniedError, UnreachableError."""
        while True:
            lease = self._try_acquire(command)
            if lease is not None:
                self.lease = lease
                if self.heartbeat:
                    self._stop.clear()
                    self._thread = threading.Thread(target=self._beat, name="eksir-lease", daemon=True)
                    self._thread.start()
                return lease
            if not wait:
                holder = self.holder()
                who = holder.describe() if holder else "another worker"
                raise CaseLockedError(
                    f"case {self.case_key.rsplit('/', 1)[-1]} is being written by {who}: "
                    "wait for it to finish or pass --wait"
                )
            time.sleep(WAIT_POLL_SECONDS)

    def _try_acquire(self, command: str) -> Lease | None:
        owner = uuid.uuid4().hex
        now = time.time()
        since = datetime.now(UTC)
        try:
            with self._call("take the case lease"):
                item = self.dynamo.update_item(
                    TableName=self.table,
                    Key={"case_key": {"S": self.case_key}},
                    UpdateExpression=(
                        "SET #token = if_not_exists(#token, :zero) + :one, #owner = :owner, pid = :pid, "
                        "host = :host, command = :command, since = :since, expires_at = :expires"
                    ),
                    ConditionExpression="attribute_not_exists(case_key) OR expires_at < :now",
                    ExpressionAttributeNames={"#token": "token", "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":zero": {"N": "0"},
                        ":one": {"N": "1"},
                        ":owner": {"S": owner},
                        ":pid": {"N": str(os.getpid())},
                        ":host": {"S": socket.gethostname()},
                        ":command": {"S": command[:200] or "-"},
                        ":since": {"S": since.isoformat()},
                        ":expires": {"N": f"{now + self.ttl:.3f}"},
                        ":now": {"N": f"{now:.3f}"},
                    },
                    ReturnValues="ALL_NEW",
                )
        except EksirError as exc:
            if exc.code == CONDITION_FAILED:
                return None
            raise
        self.owner = owner
        self._held_until = now + self.ttl
        token = int(item["Attributes"]["token"]["N"])
        return Lease(os.getpid(), socket.gethostname(), command[:200], since, token)

    def holder(self) -> Lease | None:
        """Who holds the lease now (None when nobody or it expired); raises like `acquire`."""
        item = self._item()
        if item is None or float(item.get("expires_at", {}).get("N", "0")) < time.time():
            return None
        return _lease_of(item)

    def check(self) -> int:
        """The fencing test before a write: our token, or LeaseLostError when another took the lease."""
        if self.lease is None:
            raise LeaseLostError(f"case {self.case_key} is written without holding its lease")
        if not self.lost and time.time() < self._held_until - self.ttl / 3:
            return self.lease.token  # our own write holds the item until then: no read needed
        item = self._item()
        if self.lost or item is None or item.get("owner", {}).get("S") != self.owner:
            self.lost = True
            other = _lease_of(item) if item else None
            raise LeaseLostError(
                f"the lease on case {self.case_key.rsplit('/', 1)[-1]} expired and "
                f"{other.describe() if other else 'another worker'} took it over: this write is refused"
                f" (token {self.lease.token} is stale)"
            )
        return self.lease.token

    def release(self) -> None:
        """Give the lease back (expires now, the token stays so the next holder's is higher)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.lease is None:
            return
        with suppress(EksirError):  # lost or unreachable: it expires by itself
            self._extend(0.0)
        self.lease = None

    def _beat(self) -> None:
        """Extend the lease every third of its lifetime; stop when it was taken over."""
        while not self._stop.wait(self.ttl / 3):
            try:
                self._extend(time.time() + self.ttl)
            except EksirError as exc:
                if exc.code == CONDITION_FAILED:
                    self.lost = True
                    return

    def _extend(self, expires_at: float) -> None:
        with self._call("extend the case lease"):
            self.dynamo.update_item(
                TableName=self.table,
                Key={"case_key": {"S": self.case_key}},
                UpdateExpression="SET expires_at = :expires",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":expires": {"N": f"{expires_at:.3f}"},
                    ":owner": {"S": self.owner},
                },
            )
        self._held_until = expires_at

    def _item(self) -> dict[str, Any] | None:
        with self._call("read the case lease"):
            found = self.dynamo.get_item(
                TableName=self.table, Key={"case_key": {"S": self.case_key}}, ConsistentRead=True
            )
        return dict(found["Item"]) if "Item" in found else None

    def _call(self, doing: str) -> AbstractContextManager[None]:
        return _table_call(f"{doing} ({self.table})", self.table)


@contextmanager
def _table_call(doing: str, table: str) -> Iterator[None]:
    """`aws_call`, with a missing table named as such (NotFoundError, exit 10)."""
    try:
        with aws_call(doing):
            yield
    except NotFoundError as error:
        raise NotFoundError(
            f"the lease table {table!r} does not exist: create it (partition key case_key, a string) "
            "or name another with --lock-table / EKSIR_LOCK_TABLE",
            code=error.code,
        ) from error


def _lease_of(item: dict[str, Any]) -> Lease:
    return Lease(
        pid=int(item.get("pid", {}).get("N", "0")),
        host=str(item.get("host", {}).get("S", "?")),
        command=str(item.get("command", {}).get("S", "?")),
        since=datetime.fromisoformat(item.get("since", {}).get("S", "1970-01-01T00:00:00+00:00")),
        token=int(item.get("token", {}).get("N", "0")),
    )
