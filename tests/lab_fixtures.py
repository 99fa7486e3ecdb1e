"""pytest fixtures for the lab's AWS side and for a fully seeded lab, one per scenario.

`moto_server` is moto in-process (ThreadedMotoServer) on a loopback port: seconds to seed, gone with the
session. `lab` runs the real `eksir lab up` code path (detached moto, etcd, kube-apiserver, seeding) once per
scenario and stops it afterwards; tests that take it run for every scenario. Registered by the root conftest
(`pytest_plugins`), so one session-scoped fixture serves every module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eksir.errors import LabError
from eksir.lab import lab as lab_module
from eksir.lab.moto_server import AwsEndpoint, InProcessMoto
from eksir.lab.scenarios import SINGLE_ACCOUNT
from tests.lab_plugin import SKIP_ENV, lab_disabled


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsEndpoint]:
    """A moto HTTP server on 127.0.0.1 for the session; boto3 reaches it through `endpoint.client()`."""
    server = InProcessMoto(tmp_path_factory.mktemp("moto"))
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session", params=[s.value for s in SINGLE_ACCOUNT])
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[lab_module.LabState]:
    """A lab seeded with one scenario (every scenario in turn), stopped and verified gone afterwards."""
    if lab_disabled():
        pytest.skip(f"{SKIP_ENV}=1: lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp(f"lab-{request.param}")
    try:
        state = lab_module.up(lab_dir, str(request.param), seed=20240611)
    except LabError as exc:
        pytest.fail(f"lab did not come up for {request.param}: {exc.message}", pytrace=False)
    try:
        yield state
    finally:
        lab_module.down(lab_dir)
