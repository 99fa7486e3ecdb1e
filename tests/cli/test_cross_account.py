"""Acting across accounts: the assumed role, the refusal without one, the role map; moto as a real server.

moto serves every account from one endpoint: STS AssumeRole into a role ARN of another account returns keys
whose calls land in that account's backend (shared/docs/moto-notes.md). moto does not check the role's trust
policy, external id or SourceIdentity unless IAM enforcement is on, so these tests prove where the calls go
and what eksir sends (the session name and SourceIdentity are read back from the credentials' identity),
not AWS's trust evaluation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eksir.cli.accounts import AccountAccess, caller_account, load_role_map
from eksir.clients.assume import AssumedRole, RoleMap, sts_name
from eksir.clients.aws import AwsClients
from eksir.errors import BadInputError, ExitCode, PermissionDeniedError, RefusedError
from eksir.lab.moto_server import AwsEndpoint
from tests.cli.helpers import FIXTURES, run_in_process

MEMBER = "111122223333"  # the account of every fixture finding
CALLER = "123456789012"  # moto's default account: the "security account" here
TEMPLATE = "arn:aws:iam::{account}:role/eksir-responder"


@pytest.fixture
def aws_env(moto_server: AwsEndpoint, monkeypatch: pytest.MonkeyPatch) -> AwsEndpoint:
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "EKSIR_ASSUME_ROLE", "EKSIR_EXTERNAL_ID", "EKSIR_ROLE_MAP"):
        monkeypatch.delenv(name, raising=False)
    return moto_server


def test_clients_with_a_role_act_in_its_account_named_after_the_case(aws_env: AwsEndpoint) -> None:
    role = AssumedRole(f"arn:aws:iam::{MEMBER}:role/eksir-responder", "eksir-case-1", "xid", "alice@host")
    member = AwsClients(region="us-east-1", endpoint_url=aws_env.url, role=role, account_id=MEMBER)
    home = AwsClients(region="us-east-1", endpoint_url=aws_env.url)
    identity = member("sts").get_caller_identity()
    assert identity["Account"] == MEMBER
    assert identity["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/eksir-responder/eksir-case-1"
    assert home("sts").get_caller_identity()["Account"] == CALLER
    member("s3").create_bucket(Bucket="member-only-bucket")
    assert "member-only-bucket" in {b["Name"] for b in member("s3").list_buckets()["Buckets"]}
    assert "member-only-bucket" not in {b["Name"] for b in home("s3").list_buckets()["Buckets"]}


def test_assumed_credentials_are_fetched_again_before_they_expire(aws_env: AwsEndpoint) -> None:
    role = AssumedRole(f"arn:aws:iam::{MEMBER}:role/eksir-responder", "eksir-case-2")
    aws = AwsClients(region="us-east-1", endpoint_url=aws_env.url, role=role)
    credentials = aws.session().get_credentials()
    first = credentials.get_frozen_credentials().access_key
    assert credentials.get_frozen_credentials().access_key == first  # fresh: no second AssumeRole
    # An hour later, as botocore would see it: the session's expiry and the fetcher's cached response are
    # both inside the refresh window (botocore refreshes 15 minutes early).
    soon = datetime.now(UTC) + timedelta(seconds=30)
    credentials._expiry_time = soon
    for cached in credentials._refresh_using.__self__._cache.values():
        cached["Credentials"]["Expiration"] = soon.isoformat()
    second = credentials.get_frozen_credentials().access_key
    assert second != first
    assert aws("sts").get_caller_identity()["Account"] == MEMBER


def test_assume_role_sends_the_external_id_and_the_operator_as_source_identity() -> None:
    role = AssumedRole(TEMPLATE.format(account=MEMBER), "eksir-case id/with spaces", "xid", "bob smith@host")
    assert role.extra_args() == {
        "RoleSessionName": "eksir-case-id-with-spaces",
        "ExternalId": "xid",
        "SourceIdentity": "bob-smith@host",
    }
    assert len(sts_name("x" * 100)) == 64
    assert sts_name("") == "--"


def test_another_account_without_a_role_is_refused_naming_it(aws_env: AwsEndpoint) -> None:
    access = AccountAccess("us-east-1", None, aws_env.url)
    with pytest.raises(RefusedError) as refused:
        access.route(MEMBER, "us-east-1")
    assert MEMBER in refused.value.message
    assert CALLER in refused.value.message
    assert "--assume-role" in refused.value.message
    assert "EKSIR_ASSUME_ROLE" in refused.value.message
    assert access.route(CALLER, "us-east-1").role_arn is None  # its own account: no role needed


def test_a_route_with_the_template_lands_in_the_findings_account(aws_env: AwsEndpoint) -> None:
    access = AccountAccess("us-east-1", None, aws_env.url, RoleMap(TEMPLATE), operator="alice@host")
    route = access.route(MEMBER, "us-east-1")
    assert route.role_arn == f"arn:aws:iam::{MEMBER}:role/eksir-responder"
    aws = route.clients("eksir-20240801-abc")
    assert aws.account_id == MEMBER
    assert aws("sts").get_caller_identity()["Arn"].endswith("/eksir-responder/eksir-eksir-20240801-abc")


def test_respond_without_a_role_exits_12_before_opening_a_case(
    aws_env: AwsEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = tmp_path / "cases"
    finding = str(FIXTURES / "iam-user.eventbridge.json")
    args = ["respond", finding, "--approve", "all", "--yes", "--cases-dir", str(cases)]
    code, _out, err = run_in_process([*args, "--endpoint-url", aws_env.url], capsys, monkeypatch)
    assert code == ExitCode.REFUSED, err
    assert f"the finding is in account {MEMBER}" in err
    assert "nothing was changed" in err
    assert not cases.exists() or not any(cases.iterdir())


def test_respond_with_a_role_that_cannot_be_assumed_is_denied_exit_8(
    aws_env: AwsEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role ARN of a third account: moto hands out keys for it, which land elsewhere than the finding."""
    cases = tmp_path / "cases"
    role_map = tmp_path / "roles.yaml"
    role_map.write_text(f'accounts: {{"{MEMBER}": "arn:aws:iam::999999999999:role/wrong"}}\n')
    finding = str(FIXTURES / "iam-user.eventbridge.json")
    args = ["plan", finding, "--cases-dir", str(cases), "--role-map", str(role_map)]
    args += ["--endpoint-url", aws_env.url]
    code, _out, err = run_in_process(args, capsys, monkeypatch)
    assert code == ExitCode.PERMISSION_DENIED, err
    assert "acts in account 999999999999, not 111122223333" in err


def test_role_map_file_maps_accounts_and_organizational_units(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(
        json.dumps(
            {
                "assume_role": TEMPLATE,
                "external_id": "from-file",
                "accounts": {"222222222222": "arn:aws:iam::222222222222:role/legacy-ir"},
                "organizational_units": {
                    "ou-ab12-cdefgh34": {
                        "role": "arn:aws:iam::{account}:role/ou-ir",
                        "accounts": ["333333333333"],
                    }
                },
            }
        )
    )
    roles = load_role_map(None, None, path)
    assert roles.role_for("222222222222") == "arn:aws:iam::222222222222:role/legacy-ir"
    assert roles.role_for("333333333333") == "arn:aws:iam::333333333333:role/ou-ir"
    assert roles.role_for(MEMBER) == f"arn:aws:iam::{MEMBER}:role/eksir-responder"
    assert roles.external_id == "from-file"
    assert load_role_map(None, "from-option", path).external_id == "from-option"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("assume_role: not-an-arn\n", "is not an IAM role ARN"),
        ('accounts: {"12": "arn:aws:iam::12:role/x"}\n', "not a 12-digit AWS account id"),
        ("organizational_units: {ou-1: {accounts: [1]}}\n", "needs role and accounts"),
        ("- a list\n", "expected a mapping"),
        ("a: [unclosed\n", "cannot read it"),
    ],
)
def test_a_bad_role_map_is_bad_input(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(content)
    with pytest.raises(BadInputError, match=message):
        load_role_map(None, None, path)


def test_a_bad_assume_role_option_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    finding = str(FIXTURES / "iam-user.eventbridge.json")
    args = ["plan", finding, "--cases-dir", str(tmp_path), "--assume-role", "eksir-responder"]
    code, _out, err = run_in_process(args, capsys, monkeypatch)
    assert code == ExitCode.BAD_INPUT
    assert "'eksir-responder' is not an IAM role ARN" in err


def test_the_eks_token_is_minted_with_the_member_roles_credentials(aws_env: AwsEndpoint) -> None:
    """The token's presigned GetCallerIdentity is signed by the assumed session (ASIA... key, session
    token), so EKS authenticates the member account's role, not the caller."""
    from urllib.parse import parse_qs, urlparse

    from eksir.clients.eks_token import decode_token
    from eksir.engine.context import KubeProvider

    access = AccountAccess("us-east-1", None, aws_env.url, RoleMap(TEMPLATE), operator="alice@host")
    aws = access.route(MEMBER, "us-east-1").clients("eksir-token-case")
    kube = KubeProvider(aws=aws, cluster_name="prod", environ={})
    query = parse_qs(urlparse(decode_token(kube._mint())).query)
    frozen = aws.session().get_credentials().get_frozen_credentials()
    assert frozen.access_key != aws_env.access_key_id  # not the caller's own key
    assert query["X-Amz-Credential"][0].startswith(frozen.access_key + "/")
    assert query["X-Amz-Security-Token"] == [frozen.token]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]


def test_without_any_credentials_nothing_is_refused_and_the_first_aws_call_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_server: AwsEndpoint
) -> None:
    """A command that reaches the cluster with a kubeconfig alone (prevent --prove) needs no AWS; one that
    does call AWS fails on that call with exit 8, as before."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    route = AccountAccess("us-east-1", None, moto_server.url).route(MEMBER, "us-east-1")
    assert route.role_arn is None
    with pytest.raises(PermissionDeniedError, match="no usable AWS credentials"):
        caller_account(route.clients("c"))


def test_close_out_clients_keep_guardduty_and_security_hub_home_and_snapshots_in_the_member(
    aws_env: AwsEndpoint,
) -> None:
    from eksir.cli.accounts import SplitClients

    access = AccountAccess("us-east-1", None, aws_env.url, RoleMap(TEMPLATE))
    split = SplitClients(access.route(MEMBER, "us-east-1").clients("c"), access.home("us-east-1"))
    member_ec2, home_gd = split.client("ec2"), split.client("guardduty")
    assert member_ec2 is split.incident.client("ec2")
    assert home_gd is split.home.client("guardduty")
    assert split.client("securityhub") is split.home.client("securityhub")
    volume = member_ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    snapshot = member_ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    assert member_ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["OwnerId"] == MEMBER


def test_doctor_checks_a_member_account_through_the_role_and_refuses_without_one(
    aws_env: AwsEndpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto has no cluster here: the cluster checks fail (exit 9); the identity check is the point."""
    args = ["doctor", "--cluster", "prod", "--account", MEMBER, "--endpoint-url", aws_env.url, "-o", "json"]
    code, _out, err = run_in_process(args, capsys, monkeypatch)
    assert code == ExitCode.REFUSED, err
    code, out, err = run_in_process([*args, "--assume-role", TEMPLATE], capsys, monkeypatch)
    assert code == ExitCode.STEP_FAILED, err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["aws identity"]["detail"].startswith(f"arn:aws:sts::{MEMBER}:assumed-role/eksir-responder/")
    code, _out, err = run_in_process([*args[:4], "12", *args[5:]], capsys, monkeypatch)
    assert code == ExitCode.BAD_INPUT
    assert "'12' is not a 12-digit AWS account id" in err
