"""pytest fixtures that run tests against the lab's real kube-apiserver + etcd.

Why the fixture fails instead of skipping when Go is missing or a build breaks: a silently skipped Kubernetes
suite looks green while testing nothing. Set EKSIR_SKIP_LAB=1 to skip every `lab`-marked test on purpose
(e.g. a quick unit-only run). One control plane serves the whole session; each test gets its own namespace.
Namespaces are deleted afterwards but stay Terminating: the lab runs no controller-manager.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from eksir.errors import LabError
from eksir.lab.build import LabBinaries, ensure_binaries
from eksir.lab.controlplane import ControlPlane, create_namespace, start_control_plane

SKIP_ENV = "EKSIR_SKIP_LAB"


def lab_disabled() -> bool:
    """True when the user asked to skip lab tests (EKSIR_SKIP_LAB=1)."""
    return os.environ.get(SKIP_ENV, "").strip().lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `lab`-marked tests when EKSIR_SKIP_LAB=1, so no Go build or server start is attempted."""
    if not lab_disabled():
        return
    skip = pytest.mark.skip(reason=f"{SKIP_ENV}=1: lab tests skipped on request")
    for item in items:
        if item.get_closest_marker("lab") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab_binaries(request: pytest.FixtureRequest) -> LabBinaries:
    """The pinned kube-apiserver and etcd, built on first use (minutes) and cached across sessions."""
    if lab_disabled():
        pytest.skip(f"{SKIP_ENV}=1: lab tests skipped on request")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"eksir lab: {message}")

    try:
        return ensure_binaries(progress=progress)
    except LabError as exc:
        problem = exc.message
    pytest.fail(f"lab binaries unavailable: {problem}", pytrace=False)  # outside `except`: no chained trace


@pytest.fixture(scope="session")
def control_plane(
    lab_binaries: LabBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """A real control plane on loopback for the whole session, stopped (and verified gone) at the end."""
    try:
        plane = start_control_plane(tmp_path_factory.mktemp("lab"), lab_binaries)
    except LabError as exc:
        problem = exc.message
    else:
        problem = ""
    if problem:
        pytest.fail(f"lab control plane did not start: {problem}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def k8s_admin(control_plane: ControlPlane) -> Iterator[ApiClient]:
    """An ApiClient authenticated as eksir-admin (system:masters)."""
    with control_plane.api_client() as api:
        yield api


@pytest.fixture
def k8s_namespace(k8s_admin: ApiClient) -> Iterator[str]:
    """A fresh namespace (with its `default` ServiceAccount), deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    create_namespace(k8s_admin, name)
    yield name
    try:
        CoreV1Api(k8s_admin).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
