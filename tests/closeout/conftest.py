"""moto as a real HTTP server for close-out and suppression-filter tests (reset before each test)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from eksir.lab.moto_server import AwsEndpoint, InProcessMoto


@pytest.fixture(scope="session")
def closeout_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsEndpoint]:
    with InProcessMoto(Path(tmp_path_factory.mktemp("moto"))) as server:
        yield server.endpoint


@pytest.fixture
def aws(closeout_moto: AwsEndpoint) -> AwsEndpoint:
    request = urllib.request.Request(f"{closeout_moto.url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return closeout_moto
