"""Fixtures for the resolution tests: moto as a real HTTP server, and a seeded incident per test.

Why our own moto fixture (`resolve_moto`): the lab's AWS fixtures are still changing, and a distinct name can
never collide with theirs. Every test gets an empty moto (reset) and its own namespace and node names in the
session's real kube-apiserver, so tests cannot see each other's objects.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from eksir.lab.controlplane import ControlPlane
from tests.resolve.seed import AwsSeed, Incident, seed_aws, seed_incident

REGION = "us-east-1"


@pytest.fixture(scope="session")
def resolve_moto() -> Iterator[str]:
    """The URL of a moto server that lives for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_url(resolve_moto: str) -> str:
    """The session's moto server, emptied for this test."""
    request = urllib.request.Request(f"{resolve_moto}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    return resolve_moto


def moto_client(url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class AwsClients:
    """`aws(service)` for resolve(): one client per service (so a Stubber on it sees every call)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = moto_client(self.url, service)
        return self.clients[service]


@pytest.fixture
def aws(moto_url: str) -> AwsClients:
    return AwsClients(moto_url)


@pytest.fixture
def aws_seed(aws: AwsClients) -> AwsSeed:
    """An EKS cluster, an Auto Scaling group with an on-demand and a Spot instance, IAM principals."""
    return seed_aws(aws)


@pytest.fixture
def incident(control_plane: ControlPlane, k8s_namespace: str, aws_seed: AwsSeed) -> Iterator[Incident]:
    """The Kubernetes half: nodes for both instances, a Deployment -> ReplicaSet -> pod chain and more."""
    with control_plane.api_client() as api:
        seeded = seed_incident(api, k8s_namespace, aws_seed)
        try:
            yield seeded
        finally:
            seeded.cleanup(api)


@pytest.fixture
def k8s(control_plane: ControlPlane) -> Callable[[], Any]:
    """`k8s()` for resolve(): an admin ApiClient of the lab's API server."""
    return control_plane.api_client
