"""The DynamoDB case lease on moto server: one holder at a time, a heartbeat that keeps a long holder's lease,
expiry that frees a dead holder's, a token that grows with every acquisition and survives release."""

from __future__ import annotations

import time

import pytest

from eksir.errors import NotFoundError
from eksir.store.dynamo_lease import DynamoCaseLock, LeaseLostError
from eksir.store.lock import CaseLockedError
from tests.store.s3_fixtures import SharedStore


def _lock(
    store: SharedStore, *, ttl: float, heartbeat: bool = True, table: str | None = None
) -> DynamoCaseLock:
    return DynamoCaseLock(
        store.dynamo, table or store.table, "bucket/prefix/eksir-1", ttl=ttl, heartbeat=heartbeat
    )


def test_a_held_lease_refuses_a_second_holder_naming_the_first(shared_store: SharedStore) -> None:
    first = _lock(shared_store, ttl=30)
    lease = first.acquire("eksir respond", wait=False)
    try:
        with pytest.raises(CaseLockedError, match=r"pid \d+ on .*eksir respond"):
            _lock(shared_store, ttl=30).acquire("eksir report", wait=False)
    finally:
        first.release()
    assert lease.token == 1


def test_the_heartbeat_keeps_a_lease_held_past_its_lifetime(shared_store: SharedStore) -> None:
    holder = _lock(shared_store, ttl=1.0)
    holder.acquire("long step", wait=False)
    try:
        time.sleep(2.5)
        with pytest.raises(CaseLockedError):
            _lock(shared_store, ttl=1.0).acquire("taker", wait=False)
        assert holder.check() == 1
    finally:
        holder.release()


def test_release_frees_the_lease_at_once_and_the_next_token_is_higher(shared_store: SharedStore) -> None:
    first = _lock(shared_store, ttl=30)
    first.acquire("one", wait=False)
    first.release()
    second = _lock(shared_store, ttl=30)
    assert second.acquire("two", wait=False).token == 2
    second.release()


def test_an_expired_lease_is_taken_over_and_the_old_holder_fails_its_fencing_check(
    shared_store: SharedStore,
) -> None:
    stale = _lock(shared_store, ttl=0.5, heartbeat=False)
    stale.acquire("paused", wait=False)
    time.sleep(1.0)
    taker = _lock(shared_store, ttl=30)
    assert taker.acquire("taker", wait=True).token == 2
    try:
        with pytest.raises(LeaseLostError, match="token 1 is stale"):
            stale.check()
        assert taker.check() == 2
    finally:
        stale.release()  # a lost lease's release changes nothing
        assert taker.check() == 2
        taker.release()


def _lease_reads(store: SharedStore) -> list[str]:
    """Every GetItem the store's DynamoDB client makes from now on (the lease item's reads)."""
    reads: list[str] = []
    store.dynamo.meta.events.register("before-call.dynamodb.GetItem", lambda **_: reads.append("GetItem"))
    return reads


def test_the_fencing_check_reads_the_item_only_once_its_own_expiry_is_near(shared_store: SharedStore) -> None:
    """Nobody can take a lease over before the expiry its holder wrote; a check well before it is local."""
    holder = _lock(shared_store, ttl=3.0, heartbeat=False)
    holder.acquire("respond", wait=False)
    reads = _lease_reads(shared_store)
    try:
        assert holder.check() == 1
        assert reads == [], "a lease acquired a moment ago needs no read"
        time.sleep(2.2)  # no heartbeat: less than a third of its life remains
        assert holder.check() == 1
        assert reads == ["GetItem"]
    finally:
        holder.release()
        shared_store.dynamo.meta.events.unregister("before-call.dynamodb.GetItem")


def test_a_heartbeat_that_was_refused_makes_every_check_fail_at_once(shared_store: SharedStore) -> None:
    holder = _lock(shared_store, ttl=30)
    holder.acquire("respond", wait=False)
    try:
        holder.lost = True  # as `_beat` records a refused extension
        with pytest.raises(LeaseLostError, match="token 1 is stale"):
            holder.check()
    finally:
        holder.release()


def test_a_waiting_contender_gets_the_lease_when_the_holder_dies_without_releasing(
    shared_store: SharedStore,
) -> None:
    dead = _lock(shared_store, ttl=1.0, heartbeat=False)
    dead.acquire("killed", wait=False)  # never released: as after kill -9
    started = time.monotonic()
    lease = _lock(shared_store, ttl=30).acquire("next", wait=True)
    assert lease.token == 2
    assert time.monotonic() - started < 10


def test_a_missing_table_is_named(shared_store: SharedStore) -> None:
    with pytest.raises(NotFoundError, match="lease table 'eksir-missing' does not exist"):
        _lock(shared_store, ttl=30, table="eksir-missing").acquire("x", wait=False)
