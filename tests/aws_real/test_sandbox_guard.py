"""The real-AWS tests' guard, offline: when they skip, and which accounts and clusters they refuse.

These run in every `make test` (no AWS needed): the guard is what keeps `make test-aws` out of any account
that is not a configured sandbox, so it is tested where it cannot be skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from eksir.lab.moto_server import AwsEndpoint
from tests.aws_real.sandbox import SandboxConfig, cluster_refusal, refusal, skip_reason

SANDBOX = "111122223333"
HERE = Path(__file__).resolve().parent


def _config(account: str = SANDBOX) -> SandboxConfig:
    return SandboxConfig.from_env({"EKSIR_TEST_AWS_ACCOUNT": account, "AWS_REGION": "eu-west-1"})


def test_skipped_unless_opted_in_and_credentials_are_present() -> None:
    assert "opt-in" in (skip_reason({}, has_credentials=True) or "")
    assert "opt-in" in (skip_reason({"EKSIR_TEST_AWS": "true"}, has_credentials=True) or "")
    assert "no AWS credentials" in (skip_reason({"EKSIR_TEST_AWS": "1"}, has_credentials=False) or "")
    assert skip_reason({"EKSIR_TEST_AWS": "1"}, has_credentials=True) is None


def test_an_account_other_than_the_configured_sandbox_is_refused() -> None:
    assert refusal(_config(), SANDBOX) is None
    assert "not the sandbox 111122223333" in (refusal(_config(), "999988887777") or "")


def test_no_configured_sandbox_means_refusal_whatever_the_credentials() -> None:
    for account in ("", "1111", "11112222333x"):
        assert "refusing" in (refusal(_config(account), SANDBOX) or "")


def test_the_game_day_needs_the_sandbox_tag_on_the_cluster() -> None:
    assert cluster_refusal("c", {"eksir.io/sandbox": "true"}) is None
    assert "not tagged eksir.io/sandbox=true" in (cluster_refusal("c", {"eksir.io/sandbox": "yes"}) or "")
    assert cluster_refusal("c", {}) is not None


def test_the_configuration_is_read_from_the_environment() -> None:
    config = SandboxConfig.from_env(
        {
            "EKSIR_TEST_AWS_ACCOUNT": SANDBOX,
            "AWS_DEFAULT_REGION": "us-west-2",
            "EKSIR_TEST_AWS_CLUSTER": "sandbox",
            "EKSIR_TEST_AWS_APPROVE_ALL": "1",
        }
    )
    assert (config.account, config.region, config.cluster, config.approve_all) == (
        SANDBOX,
        "us-west-2",
        "sandbox",
        True,
    )
    assert config.assume_role is None


def test_opted_in_with_credentials_of_another_account_the_whole_run_stops(moto_server: AwsEndpoint) -> None:
    """End to end through pytest and STS (moto's, account 123456789012): the configured sandbox differs, so
    the run stops with exit 4 before any test runs, naming both accounts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EKSIR_TEST_AWS"))}
    env.update(moto_server.env())
    env.update(
        {"EKSIR_TEST_AWS": "1", "EKSIR_TEST_AWS_ACCOUNT": SANDBOX, "EKSIR_TEST_AWS_CLUSTER": "sandbox"}
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(HERE / "test_eks_token_real.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE.parents[1],
        timeout=300,
        check=False,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "resolve to account 123456789012, not the sandbox 111122223333" in result.stdout
    assert " passed" not in result.stdout
