"""moto's IAM enforcement for the cross-account lab: the responder's policy as moto can check it; the switch.

Why a lab variant of the policy: moto 5 matches a statement's `Resource` against the request only for S3,
IAM, STS and SQS (every other service's request resource is `*`, which a scoped ARN never matches), and it
evaluates a statement's `Condition` only against request parameters (it knows sts:ExternalId, not
aws:ResourceTag), so the generated policy's conditioned grants would deny what AWS allows. The lab
therefore deploys, through the same member-account template, *exactly the generated actions* on `*` with no
conditions, plus the names moto authorizes a few calls under (MOTO_ALIASES). This proves the actions under
enforcement; the scoping is checked offline (parliament and unit tests: test_permissions_scoping.py).

Why it is switched on last and only here: enforcement is a setting of the whole moto server
(`/moto-api/reset-auth`, moto's INITIAL_NO_AUTH_ACTION_COUNT), for every account and caller at once; from
then on a request must be signed by an IAM principal that moto knows (an IAM user's key or an assumed role's
session) whose policies allow it, and moto's default `testing` keys are refused. So the lab seeds everything
first as IAM admin users (lab/organisation.py), and only `eksir lab up` switches its own detached moto server,
never a server that tests share (lab_fixtures' in-process `moto_server`).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from eksir.errors import LabError

RESET_AUTH = "/moto-api/reset-auth"
MOTO_ALIASES: dict[str, tuple[str, ...]] = {
    # AWS authorizes ListObjectsV2 and HeadBucket as s3:ListBucket (as the policy grants them); moto
    # authorizes ListObjectsV2 under its operation name and HeadBucket as s3:HeadBucket.
    "s3:ListBucket": ("s3:ListObjectsV2", "s3:HeadBucket"),
    # moto prefixes the action with the SigV4 signing name, `tagging` for the Resource Groups Tagging API.
    "tag:GetResources": ("tagging:GetResources",),
}
"""Generated action -> the action names moto authorizes the same call under (moto quirks, not AWS's)."""


def policy_actions(policy: dict[str, Any]) -> set[str]:
    """Every action an IAM policy document allows (Action as a string or a list)."""
    actions: set[str] = set()
    for statement in policy["Statement"]:
        granted = statement["Action"]
        actions.update([granted] if isinstance(granted, str) else granted)
    return actions


def unscoped_policy(policy: dict[str, Any], without: Iterable[str] = ()) -> dict[str, Any]:
    """`policy`'s actions on `*` without conditions, plus moto's aliases, less `without` (and its aliases).

    `without` is how a test removes one sampled action to see the step that needs it denied."""
    actions = policy_actions(policy) - set(without)
    actions |= {alias for action in actions for alias in MOTO_ALIASES.get(action, ())}
    statement = {"Sid": "EksirLabUnscoped", "Effect": "Allow", "Action": sorted(actions), "Resource": "*"}
    return {"Version": policy["Version"], "Statement": [statement]}


def enforce(moto_url: str) -> None:
    """Switch moto's IAM authorization on for every later request to the server at `moto_url`.

    Only for a moto server the caller owns (see the module docstring). Raises LabError if it does not answer.
    """
    request = urllib.request.Request(
        moto_url + RESET_AUTH, data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"moto at {moto_url} did not switch IAM enforcement on: {exc}") from exc
