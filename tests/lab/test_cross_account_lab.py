"""The cross-account lab end to end, as a responder would type it (issue 14's definition of done).

`eksir lab up --scenario cross-account`, `eval "$(eksir lab env)"` (the security account's operator and
EKSIR_ASSUME_ROLE, no KUBECONFIG), then `eksir respond`: contained in the member account through the assumed
role and an EKS token, under the generated policy with moto's IAM enforcement on (the scenario's default);
without EKSIR_ASSUME_ROLE the same command exits 12 and changes nothing; `eksir hunt CASE` over the member's
trail bucket finds every ground-truth event; with one sampled action removed from the responder's policy, the
step that needs it is denied (exit 8) and the case resumes once it is granted again. moto matches resource
ARNs only for S3/IAM/STS/SQS and cannot evaluate conditions such as aws:ResourceTag, so the role holds the
lab's unscoped variant (exactly the generated actions on `*`, lab/iam_enforcement.py): this proves the
policy's actions; its scoping is checked offline (tests/cli/test_permissions_scoping.py). The attacked
node is simulated: the machine's containerd is shared with other labs, and the accounts are the point here.
(`--trust-finding-file`: moto has no GuardDuty GetFindings, as for every lab run.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from eksir.actions.permissions import all_specs, iam_policy
from eksir.errors import ExitCode
from eksir.lab import lab, node_runtime
from eksir.lab.iam_enforcement import MOTO_ALIASES, policy_actions, unscoped_policy
from eksir.lab.moto_server import AwsEndpoint
from tests.lab_plugin import lab_disabled

pytestmark = pytest.mark.lab
SAMPLED = "iam:UpdateAccessKey"
"""The sampled action: the one change of iam.deactivate_access_key (moto authorizes IAM calls by action)."""


@pytest.fixture(scope="module")
def xlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.LabState]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("cross-account")
    previous = os.environ.get(node_runtime.FORCE_SIMULATED_ENV)
    os.environ[node_runtime.FORCE_SIMULATED_ENV] = "simulated"
    try:
        yield lab.up(lab_dir, "cross-account", seed=20240611)
    finally:
        lab.down(lab_dir)
        if previous is None:
            os.environ.pop(node_runtime.FORCE_SIMULATED_ENV, None)
        else:
            os.environ[node_runtime.FORCE_SIMULATED_ENV] = previous


def _env(state: lab.LabState, *, admin: bool = False) -> dict[str, str]:
    """The environment after `eval "$(eksir lab env)"`, read back through bash."""
    exports = lab.env_exports(state, admin=admin)
    script = f"{exports}\nenv -0"
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EKSIR_ASSUME", "EKSIR_EXTERNAL"))
    }
    done = subprocess.run(["bash", "-c", script], capture_output=True, env=base, check=True, timeout=30)
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


def _eksir(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eksir", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _truth(state: lab.LabState) -> dict[str, Any]:
    return dict(json.loads(Path(state.ground_truth).read_text()))


def test_the_organisation_has_three_accounts_and_the_finding_arrives_in_the_security_account(
    xlab: lab.LabState,
) -> None:
    accounts = _truth(xlab)["accounts"]
    assert len(set(accounts.values())) == 3
    finding = json.loads(Path(xlab.finding).read_text())
    assert finding["account"] == accounts["security"]
    assert finding["detail"]["accountId"] == accounts["member"] == xlab.account_id


def test_lab_env_exports_the_operator_and_the_role_template_without_a_kubeconfig(xlab: lab.LabState) -> None:
    accounts = _truth(xlab)["accounts"]
    env = _env(xlab)
    assert "KUBECONFIG" not in env
    assert env["EKSIR_ASSUME_ROLE"] == "arn:aws:iam::{account}:role/eksir-responder"
    operator = AwsEndpoint(
        xlab.aws_endpoint, xlab.region, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    )
    assert operator.client("sts").get_caller_identity()["Account"] == accounts["security"]
    admin = _env(xlab, admin=True)
    assert "EKSIR_ASSUME_ROLE" not in admin
    management = AwsEndpoint(
        xlab.aws_endpoint, xlab.region, admin["AWS_ACCESS_KEY_ID"], admin["AWS_SECRET_ACCESS_KEY"]
    )
    assert management.client("sts").get_caller_identity()["Account"] == accounts["management"]


def test_moto_enforces_iam_and_the_responder_role_holds_exactly_the_generated_actions(
    xlab: lab.LabState,
) -> None:
    assert xlab.organisation["iam_enforced"] == "true"
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        AwsEndpoint(xlab.aws_endpoint, xlab.region).client("s3").list_buckets()  # moto's default keys
    granted = {
        a for _arn, _version, doc in _responder_policies(_member_iam(xlab)) for a in policy_actions(doc)
    }
    assert granted == policy_actions(unscoped_policy(iam_policy(all_specs())))


def test_respond_refuses_without_the_role_then_contains_through_it_and_the_hunt_finds_everything(
    xlab: lab.LabState, tmp_path: Path
) -> None:
    cases = tmp_path / "cases"
    env, truth = _env(xlab), _truth(xlab)
    respond = ["respond", xlab.finding, "--approve", "all", "--yes", "--trust-finding-file"]
    respond += ["--cases-dir", str(cases)]
    without = {k: v for k, v in env.items() if k != "EKSIR_ASSUME_ROLE"}
    refused = _eksir(without, *respond)
    assert refused.returncode == ExitCode.REFUSED, refused.stderr
    assert f"the finding is in account {truth['accounts']['member']}" in refused.stderr
    assert not cases.exists()
    done = _eksir(env, *respond, "-o", "json")
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert steps
    # pod isolation is in place but not effective in the lab (its VPC CNI enforces no NetworkPolicy: issue 15)
    assert all(s["status"] == "verified" for s in steps if s["action_id"] != "k8s.isolate_pod"), steps
    assert {s["status"] for s in steps if s["action_id"] == "k8s.isolate_pod"} == {"not-effective"}
    assert any("iam.deactivate_access_key" in s["step_id"] for s in steps)  # the member's IAM user key
    _the_organisations_administrator_sees_the_key_contained(xlab, truth)
    case = next(p for p in cases.iterdir() if not p.name.startswith(".")).name
    assert _eksir(env, "triage", xlab.finding, "--cases-dir", str(cases)).returncode == 0
    hunt = _eksir(
        env, "hunt", case, "--cases-dir", str(cases), "-s", f"s3://{xlab.cloudtrail_bucket}/", "-o", "json"
    )
    assert hunt.returncode == 0, hunt.stderr
    found = {e["event_id"] for e in json.loads(hunt.stdout)["events"]}
    assert set(truth["cloudtrail_event_ids"]) <= found


def _the_organisations_administrator_sees_the_key_contained(
    xlab: lab.LabState, truth: dict[str, Any]
) -> None:
    """An independent check: with `eksir lab env --admin` (the management account) through the member's
    `OrganizationAccountAccessRole`, not eksir's role, the attacker's IAM user key is inactive."""
    statuses = _key_statuses(_member_iam(xlab))
    attacker_keys = _attacker_keys(truth)
    assert attacker_keys
    assert {statuses[k] for k in attacker_keys} == {"Inactive"}
    assert "Active" in statuses.values()  # the member's other users' keys were left alone


def test_a_sampled_action_removed_from_the_policy_denies_its_step_exit_8_and_the_case_resumes_once_granted(
    xlab: lab.LabState, tmp_path: Path
) -> None:
    """After the response above: the attacker's key active again (the world before that one step), then
    `respond` in a new case directory with SAMPLED removed from the responder's policy (a new default
    version, as an administrator would edit it). Only that step fails, naming the action, exit 8; nothing
    else is lost: the key stays active, the case verifies, and `resume` completes it once granted again."""
    iam, truth, env, cases = _member_iam(xlab), _truth(xlab), _env(xlab), tmp_path / "cases"
    attacker_keys = _attacker_keys(truth)
    for user in iam.list_users()["Users"]:
        for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
            if key["AccessKeyId"] in attacker_keys:
                iam.update_access_key(
                    UserName=user["UserName"], AccessKeyId=key["AccessKeyId"], Status="Active"
                )
    restore = _remove_from_responder_policy(iam, SAMPLED)
    try:
        respond = ["respond", xlab.finding, "--approve", "all", "--yes", "--trust-finding-file", "-o", "json"]
        denied = _eksir(env, *respond, "--cases-dir", str(cases))
    finally:
        restore()
    assert denied.returncode == ExitCode.PERMISSION_DENIED, denied.stderr
    assert "Traceback" not in denied.stderr
    [error] = [line for line in denied.stderr.splitlines() if line.startswith("eksir: error:")]
    assert "iam.deactivate_access_key" in error
    assert f"not authorized to perform: {SAMPLED}" in error
    done = json.loads(denied.stdout)
    failed = [s["action_id"] for s in done["steps"] if s["status"] not in {"verified", "not-effective"}]
    assert failed == ["iam.deactivate_access_key"]
    assert {_key_statuses(iam)[k] for k in attacker_keys} == {"Active"}
    case = done["case_id"]
    verify = _eksir(env, "case", "verify", case, "--cases-dir", str(cases))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    resumed = _eksir(env, "resume", case, "--approve", "all", "--yes", "--cases-dir", str(cases))
    assert resumed.returncode == 0, resumed.stderr
    assert {_key_statuses(iam)[k] for k in attacker_keys} == {"Inactive"}


def _member_iam(xlab: lab.LabState) -> Any:
    """IAM in the member account as `eksir lab env --admin` reaches it: the management account's admin
    user through the member's `OrganizationAccountAccessRole` (AdministratorAccess), not eksir's role."""
    admin = _env(xlab, admin=True)
    management = AwsEndpoint(
        xlab.aws_endpoint, xlab.region, admin["AWS_ACCESS_KEY_ID"], admin["AWS_SECRET_ACCESS_KEY"]
    )
    role = f"arn:aws:iam::{_truth(xlab)['accounts']['member']}:role/OrganizationAccountAccessRole"
    creds = management.client("sts").assume_role(RoleArn=role, RoleSessionName="independent-check")
    keys = creds["Credentials"]
    return management.client(
        "iam",
        access_key_id=keys["AccessKeyId"],
        secret_access_key=keys["SecretAccessKey"],
        session_token=keys["SessionToken"],
    )


def _attacker_keys(truth: dict[str, Any]) -> set[str]:
    principals = truth["attacker"]["aws_principals"]
    return {p["access_key_id"] for p in principals if str(p.get("access_key_id") or "").startswith("AKIA")}


def _key_statuses(iam: Any) -> dict[str, str]:
    return {
        key["AccessKeyId"]: key["Status"]
        for user in iam.list_users()["Users"]
        for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]
    }


def _responder_policies(iam: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(ARN, default version, document) of each managed policy attached to eksir-responder."""
    found = []
    for attached in iam.list_attached_role_policies(RoleName="eksir-responder")["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        found.append((arn, version, document))
    return found


def _remove_from_responder_policy(iam: Any, action: str) -> Callable[[], None]:
    """A new default version of the responder's policy that grants `action`, without it (and its moto
    aliases); returns how to put the previous version back."""
    gone = {action, *MOTO_ALIASES.get(action, ())}
    for arn, version, document in _responder_policies(iam):
        if action not in policy_actions(document):
            continue
        statements = [{**st, "Action": sorted(set(st["Action"]) - gone)} for st in document["Statement"]]
        reduced = json.dumps({**document, "Statement": statements})
        new = iam.create_policy_version(PolicyArn=arn, PolicyDocument=reduced, SetAsDefault=True)
        added = new["PolicyVersion"]["VersionId"]

        def restore(arn: str = arn, version: str = version, added: str = added) -> None:
            iam.set_default_policy_version(PolicyArn=arn, VersionId=version)
            iam.delete_policy_version(PolicyArn=arn, VersionId=added)

        return restore
    raise AssertionError(f"no policy of eksir-responder grants {action}")
