"""When the real-AWS tests run, and which account they may touch.

Why a guard of its own: these tests create an IAM user, a privileged pod and a response in a real account.
They run only when a maintainer asks (`make test-aws`, which sets EKSIR_TEST_AWS=1) with credentials at
hand, and only in an account marked as a sandbox twice: by configuration (EKSIR_TEST_AWS_ACCOUNT names the
account the credentials must resolve to) and, for anything that changes the cluster, by a tag on the EKS
cluster (`eksir.io/sandbox=true`). Credentials that resolve to any other account stop the whole run before
a call that changes anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ENABLE = "EKSIR_TEST_AWS"
ACCOUNT = "EKSIR_TEST_AWS_ACCOUNT"
CLUSTER = "EKSIR_TEST_AWS_CLUSTER"
RESPONDER_ROLE = "EKSIR_TEST_AWS_RESPONDER_ROLE_ARN"
ASSUME_ROLE = "EKSIR_TEST_AWS_ASSUME_ROLE"
MEMBER_ACCOUNT = "EKSIR_TEST_AWS_MEMBER_ACCOUNT"
APPROVE_ALL = "EKSIR_TEST_AWS_APPROVE_ALL"
SANDBOX_TAG = ("eksir.io/sandbox", "true")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class SandboxConfig:
    """What the maintainer configured (environment variables, see README "Real AWS, opt-in")."""

    account: str
    region: str | None
    profile: str | None
    cluster: str | None
    responder_role_arn: str | None
    assume_role: str | None
    member_account: str | None
    external_id: str | None
    approve_all: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SandboxConfig:
        def get(name: str) -> str | None:
            return env.get(name) or None

        return cls(
            account=env.get(ACCOUNT, ""),
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
            profile=get("AWS_PROFILE"),
            cluster=get(CLUSTER),
            responder_role_arn=get(RESPONDER_ROLE),
            assume_role=get(ASSUME_ROLE),
            member_account=get(MEMBER_ACCOUNT),
            external_id=get("EKSIR_EXTERNAL_ID"),
            approve_all=env.get(APPROVE_ALL) == "1",
        )


def skip_reason(env: Mapping[str, str], has_credentials: bool) -> str | None:
    """Why the real-AWS tests are skipped, or None when they run (opt-in and credentials present)."""
    if env.get(ENABLE) != "1":
        return f"real AWS tests are opt-in: `make test-aws` (sets {ENABLE}=1) with a sandbox account"
    if not has_credentials:
        return "no AWS credentials (set AWS_PROFILE or the AWS_* variables)"
    return None


def refusal(config: SandboxConfig, caller_account: str) -> str | None:
    """Why the run must stop (the account is not a configured sandbox), or None when it may go on."""
    if not _ACCOUNT_ID.match(config.account):
        return f"{ACCOUNT} must name the sandbox account (12 digits); refusing an unmarked account"
    if caller_account != config.account:
        return (
            f"the credentials resolve to account {caller_account}, not the sandbox {config.account} "
            f"named by {ACCOUNT}; refusing"
        )
    return None


def cluster_refusal(cluster: str, tags: Mapping[str, str]) -> str | None:
    """Why the game day must not touch this cluster (no sandbox tag), or None."""
    key, value = SANDBOX_TAG
    if tags.get(key) != value:
        return f"cluster {cluster} is not tagged {key}={value}; refusing to attack and contain it"
    return None
