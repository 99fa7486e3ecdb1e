"""Recovery's iam.delete_user removes everything DeleteUser refuses to delete past, each preserved first.

moto (over HTTP) holds the user's access key, signing certificate, SSH public key, virtual MFA device,
login profile, policies and group. moto does not implement service-specific credentials
(ListServiceSpecificCredentials answers 500), so those two calls go to a botocore Stubber, which checks the
request parameters against IAM's real service model; every other call reaches moto.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from eksir.actions.base import ActionContext
from eksir.actions.evidence.case_evidence import CASE_EXTRA
from eksir.actions.recovery.iam_user import DeleteIamUser, DeleteIamUserParams
from eksir.errors import TemporaryError
from tests.actions.conftest import boto_client, make_ctx, stubbed

CERT = """-----BEGIN CERTIFICATE-----
MIIBtjCCAVugAwIBAgITBmyf1XSXNmY/Owua2eiedgPySjAKBggqhkjOPQQDAjA5
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6b24g
Um9vdCBDQSAzMB4XDTE1MDUyNjAwMDAwMFoXDTQwMDUyNjAwMDAwMFowOTELMAkG
A1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJvb3Qg
Q0EgMzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCmXp8ZBf8ANm+gBG1bG8lKl
ui2yEujSLtf6ycXYqm0fc4E7O5hrOXwzpcVOho6AF2hiRVd9RFgdszflZwjrZt6j
QjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMB0GA1UdDgQWBBSr
ttvXBp43rDCGB5Fwx5zEGbF4wDAKBggqhkjOPQQDAgNJADBGAiEA4IWSoxe3jfkr
BqWTrBqYaGFy+uGh0PsceGCmQ5nFuMQCIQCcAu/xlJyzlvnrxir4tiz+OpAUFteM
YyRIHN8wfdVoOw==
-----END CERTIFICATE-----
"""
SSH_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDDuJ8hbIhjZQmOfGGiR1B1m2G8fsVCpgbz0mJ2p6QPwSd9rRYUyhvCiCJyN0"
    "ZhvHGGxzPo6kT9YKEC2zxJ8ymwx5XMaBCRCvkGpmfNrhURKTBc6q0VlXMV8nG1l5MVk/ECU+KHj6RpwQk9NHdqcvAKpzmBSiMD"
    "dm2yqGjw8ylbOzL1vEyh1I1Qw+2KNxTTfjuG2fTzWIcZUnXcwhXdWgf8bRw3Yf5DBjqV0mjmxWF4dQX0fIZYBsMXr5NUnm6fA3"
    "WdOBpeDgXTgPjCE2nl4/3hTkXp0gy12+1DjtW8MZbg4k0yB/ngMX3r1zM23SJfhQWrz9oSD0Tc7ka0j7t0p backdoor"
)
SPECIFIC_ID = "ACCA1234567890EXAMPLE"


class _Routed:
    """moto for everything, the Stubber's client for the calls moto does not implement."""

    STUBBED = ("list_service_specific_credentials", "delete_service_specific_credential")

    def __init__(self, real: Any, stub_client: Any) -> None:
        self._real, self._stub = real, stub_client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub if name in self.STUBBED else self._real, name)


class _Sink:
    """The case handle's evidence interface, in memory: what was preserved, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, bytes]] = []

    def add_evidence(
        self, name: str, data: bytes, source: str, description: str = "", media_type: str = ""
    ) -> Any:
        self.items.append((name, source, data))
        return type("Item", (), {"number": len(self.items), "path": f"evidence/{name}"})()

    def load(self) -> Any:
        return type("Case", (), {"evidence": ()})()


@pytest.fixture
def backdoor(moto: Any) -> dict[str, str]:
    iam = boto_client(moto, "iam")
    iam.create_user(UserName="backdoor")
    key = iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"]
    cert = iam.upload_signing_certificate(UserName="backdoor", CertificateBody=CERT)["Certificate"]
    ssh = iam.upload_ssh_public_key(UserName="backdoor", SSHPublicKeyBody=SSH_KEY)["SSHPublicKey"]
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="backdoor-mfa")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName="backdoor", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    iam.create_login_profile(UserName="backdoor", Password="S3cret!pass")
    iam.create_group(GroupName="admins")
    iam.add_user_to_group(UserName="backdoor", GroupName="admins")
    iam.put_user_policy(
        UserName="backdoor",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    return {"key": key, "cert": cert["CertificateId"], "ssh": ssh["SSHPublicKeyId"], "mfa": serial}


def _stubber(listed: list[dict[str, Any]], *, delete: bool) -> tuple[Any, Stubber]:
    client = stubbed("iam")
    stub = Stubber(client)
    for _ in range(2):  # describe (plan/apply before-state), then the removal pass
        stub.add_response(
            "list_service_specific_credentials",
            {"ServiceSpecificCredentials": listed},
            {"UserName": "backdoor"},
        )
        if delete and _ == 1:
            stub.add_response(
                "delete_service_specific_credential",
                {},
                {"UserName": "backdoor", "ServiceSpecificCredentialId": SPECIFIC_ID},
            )
    return client, stub


def test_a_user_with_a_certificate_an_ssh_key_an_mfa_device_and_a_codecommit_credential_is_deleted(
    moto: Any, backdoor: dict[str, str]
) -> None:
    listed = [
        {
            "UserName": "backdoor",
            "Status": "Active",
            "ServiceUserName": "backdoor-at-1",
            "CreateDate": "2026-11-20T10:00:00Z",
            "ServiceSpecificCredentialId": SPECIFIC_ID,
            "ServiceName": "codecommit.amazonaws.com",
        }
    ]
    client, stub = _stubber(listed, delete=True)
    sink = _Sink()
    ctx = make_ctx(
        aws=lambda s: _Routed(boto_client(moto, s), client) if s == "iam" else boto_client(moto, s)
    )
    ctx.extras[CASE_EXTRA] = sink
    params = DeleteIamUserParams(user_name="backdoor")
    with stub:
        applied = DeleteIamUser().apply(ctx, params)
    stub.assert_no_pending_responses()
    assert applied["deleted"] is True
    done = applied["sub_steps"]
    for expected in (
        f"access key {backdoor['key']}",
        f"signing certificate {backdoor['cert']}",
        f"SSH public key {backdoor['ssh']}",
        f"MFA device {backdoor['mfa']}",
        f"service-specific credential {SPECIFIC_ID}",
        "login profile",
        "inline policy all",
        "group admins",
        "user backdoor",
    ):
        assert expected in done, (expected, done)
    assert (
        done.index("login profile")
        < done.index(f"access key {backdoor['key']}")
        < done.index("user backdoor")
    )
    sources = [source for _, source, _ in sink.items]
    assert f"iam:user/backdoor signing certificate {backdoor['cert']}" in sources
    assert f"iam:user/backdoor SSH public key {backdoor['ssh']}" in sources
    assert f"iam:user/backdoor MFA device {backdoor['mfa']}" in sources
    iam = boto_client(moto, "iam")
    assert "backdoor" not in [u["UserName"] for u in iam.list_users()["Users"]]
    assert (
        iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    )  # the virtual device is deleted, not orphaned
    assert any("signing certificate" in item for item in applied["not_restorable"])
    assert f"MFA device {backdoor['mfa']}" in applied["not_restorable"]


def test_a_deletion_that_fails_halfway_is_recorded_and_resumes_with_what_is_left(
    moto: Any, backdoor: dict[str, str]
) -> None:
    listed = [
        {
            "UserName": "backdoor",
            "Status": "Active",
            "ServiceUserName": "backdoor-at-1",
            "CreateDate": "2026-11-20T10:00:00Z",
            "ServiceSpecificCredentialId": SPECIFIC_ID,
            "ServiceName": "codecommit.amazonaws.com",
        }
    ]
    client = stubbed("iam")
    stub = Stubber(client)
    for _ in range(2):
        stub.add_response(
            "list_service_specific_credentials",
            {"ServiceSpecificCredentials": listed},
            {"UserName": "backdoor"},
        )
    stub.add_client_error(
        "delete_service_specific_credential", service_error_code="ServiceFailure", http_status_code=500
    )
    sink = _Sink()
    ctx: ActionContext = make_ctx(
        aws=lambda s: _Routed(boto_client(moto, s), client) if s == "iam" else boto_client(moto, s)
    )
    ctx.extras[CASE_EXTRA] = sink
    params = DeleteIamUserParams(user_name="backdoor")
    with stub, pytest.raises(TemporaryError):
        DeleteIamUser().apply(ctx, params)
    iam = boto_client(moto, "iam")
    assert iam.list_access_keys(UserName="backdoor")["AccessKeyMetadata"] == []  # removed before the failure
    assert iam.list_user_policies(UserName="backdoor")["PolicyNames"] == ["all"]  # not reached yet
    preserved = [source for _, source, _ in sink.items]
    assert f"iam:user/backdoor access key {backdoor['key']}" in preserved
    client2, stub2 = _stubber([], delete=False)
    resumed = make_ctx(
        aws=lambda s: _Routed(boto_client(moto, s), client2) if s == "iam" else boto_client(moto, s)
    )
    with stub2:
        applied = DeleteIamUser().apply(resumed, params)
    assert applied["deleted"] is True
    assert "inline policy all" in applied["sub_steps"]
    assert f"access key {backdoor['key']}" not in applied["sub_steps"]  # done in the first run


def test_against_moto_alone_the_unlistable_kind_is_named_and_deleteuser_is_the_backstop(
    aws_ctx: ActionContext, moto: Any, backdoor: dict[str, str]
) -> None:
    described = DeleteIamUser().describe(aws_ctx, DeleteIamUserParams(user_name="backdoor"))
    assert described is not None
    assert described["credentials"]["unlisted"] == ["service-specific credential"]
    assert described["credentials"]["SSH public key"][0]["SSHPublicKeyId"] == backdoor["ssh"]
