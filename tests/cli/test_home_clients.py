"""A worker's home clients: made once for all its cases, and the caller's account asked once (moto server)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from eksir.cli.accounts import AccountAccess, HomeClients, caller_account
from eksir.lab.moto_server import AwsEndpoint


@pytest.fixture
def lab_credentials(moto_server: AwsEndpoint, monkeypatch: pytest.MonkeyPatch) -> AwsEndpoint:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_server.secret_access_key)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


def test_with_a_cache_every_case_gets_the_same_home_clients_and_one_get_caller_identity(
    lab_credentials: AwsEndpoint,
) -> None:
    access = AccountAccess(lab_credentials.region, None, lab_credentials.url, homes=HomeClients())
    home = access.home()
    calls: list[str] = []
    home("sts").meta.events.register(
        "before-call.sts.GetCallerIdentity", lambda **_: calls.append("GetCallerIdentity")
    )
    accounts = {caller_account(access.home()) for _ in range(5)}
    assert access.home() is home
    assert accounts == {lab_credentials.client("sts").get_caller_identity()["Account"]}
    assert calls == ["GetCallerIdentity"]


def test_without_a_cache_each_call_makes_new_clients(lab_credentials: AwsEndpoint) -> None:
    access = AccountAccess(lab_credentials.region, None, lab_credentials.url)
    assert access.home() is not access.home()


def test_threads_asking_for_a_first_client_at_once_share_one(lab_credentials: AwsEndpoint) -> None:
    home = HomeClients().get(lab_credentials.region, None, lab_credentials.url)
    made: list[Any] = []
    start = threading.Barrier(8)

    def first_client() -> None:
        start.wait()
        made.append(home("ec2"))

    threads = [threading.Thread(target=first_client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8
    assert all(client is made[0] for client in made)
