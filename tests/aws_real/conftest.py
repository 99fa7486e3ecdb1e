"""Fixtures of the real-AWS tests: skipped unless opted in, stopped outside the configured sandbox.

Tests marked `aws_real` are skipped with the reason (sandbox.skip_reason) unless EKSIR_TEST_AWS=1 and
credentials resolve, so `make test` collects them and reports them as skipped, never failed. With the opt-in,
the session fixture asks STS who the credentials are and stops the run (pytest.exit) when the account is not
the configured sandbox (or STS cannot say), before any test makes a call that changes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import pytest

from eksir.clients.aws import AwsClients, aws_call, new_session
from eksir.errors import EksirError
from tests.aws_real.sandbox import SandboxConfig, refusal, skip_reason

MARKER = "aws_real"


def _has_credentials() -> bool:
    """Whether boto3 resolves credentials (env, profile, SSO cache, instance role) without calling AWS."""
    try:
        config = SandboxConfig.from_env(os.environ)
        return new_session(config.profile, config.region).get_credentials() is not None
    except Exception:  # an unknown profile or a broken config file: no usable credentials
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker(MARKER)]
    if not marked:
        return
    reason = skip_reason(
        os.environ, has_credentials=os.environ.get("EKSIR_TEST_AWS") == "1" and _has_credentials()
    )
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass(frozen=True)
class Sandbox:
    """The configured sandbox and a client factory acting in it with the maintainer's credentials."""

    config: SandboxConfig
    aws: AwsClients
    caller_arn: str

    def client(self, service: str) -> Any:
        return self.aws.client(service)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """The sandbox, after STS confirmed the credentials are in it; stops the run otherwise."""
    config = SandboxConfig.from_env(os.environ)
    region = config.region or new_session(config.profile).region_name
    if not region:
        pytest.exit("make test-aws: set AWS_REGION (or a region in the profile)", returncode=4)
    config = replace(config, region=region)
    aws = AwsClients(region=region, profile=config.profile)
    try:
        with aws_call("ask STS who the test credentials are"):
            identity = aws.client("sts").get_caller_identity()
    except EksirError as exc:
        pytest.exit(f"make test-aws: {exc.message}", returncode=4)
    problem = refusal(config, identity["Account"])
    if problem:
        pytest.exit(f"make test-aws: {problem}", returncode=4)
    return Sandbox(config, aws, identity["Arn"])


def require(value: str | None, name: str) -> str:
    """The configured value, or skip the test naming the variable that would enable it."""
    if not value:
        pytest.skip(f"set {name} to run this test against the sandbox")
    return value
