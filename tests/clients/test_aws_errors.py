"""The one AWS error table: every row, with real botocore exceptions, and the exit code a responder sees.

Why every row: before this table there were four factories whose tables disagreed (`ExpiredToken` was a
permission error in one and a bare exit 1 in another). A row that moves now fails here, by name.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions as bx
import pytest
from botocore.exceptions import ClientError

from eksir.clients import aws
from eksir.clients.aws import (
    AwsClients,
    aws_call,
    client_config,
    new_client,
    new_session,
    translate_client_error,
)
from eksir.errors import (
    BadInputError,
    EksirError,
    ExitCode,
    NotFoundError,
    PermissionDeniedError,
    TemporaryError,
    UnreachableError,
)


def client_error(code: str, status: int = 400, message: str = "the service said no") -> ClientError:
    """A ClientError exactly as botocore builds it from an error response."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SomeOperation")


# (code, HTTP status, eksir error, exit code): the rows named in the README's exit-code table.
NAMED_ROWS = [
    ("ThrottlingException", 400, TemporaryError, ExitCode.UNREACHABLE),
    ("Throttling", 400, TemporaryError, ExitCode.UNREACHABLE),
    ("RequestLimitExceeded", 503, TemporaryError, ExitCode.UNREACHABLE),
    ("SlowDown", 503, TemporaryError, ExitCode.UNREACHABLE),
    ("InternalError", 500, TemporaryError, ExitCode.UNREACHABLE),
    ("", 502, TemporaryError, ExitCode.UNREACHABLE),
    ("AccessDenied", 403, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("AccessDeniedException", 400, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("UnauthorizedOperation", 403, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("ExpiredToken", 400, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("ExpiredTokenException", 400, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("UnrecognizedClientException", 400, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("InvalidClientTokenId", 403, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("SomethingForbidden", 403, PermissionDeniedError, ExitCode.PERMISSION_DENIED),
    ("NoSuchEntity", 404, NotFoundError, ExitCode.NOT_FOUND),
    ("NoSuchBucket", 404, NotFoundError, ExitCode.NOT_FOUND),
    ("NoSuchKey", 404, NotFoundError, ExitCode.NOT_FOUND),
    ("404", 404, NotFoundError, ExitCode.NOT_FOUND),
    ("ResourceNotFoundException", 400, NotFoundError, ExitCode.NOT_FOUND),
    ("InvalidInstanceID.NotFound", 400, NotFoundError, ExitCode.NOT_FOUND),
    ("InvalidGroup.NotFound", 400, NotFoundError, ExitCode.NOT_FOUND),
    ("TrailNotFoundException", 400, NotFoundError, ExitCode.NOT_FOUND),
    ("ValidationError", 400, BadInputError, ExitCode.BAD_INPUT),
    ("ValidationException", 400, BadInputError, ExitCode.BAD_INPUT),
    ("InvalidParameterValue", 400, BadInputError, ExitCode.BAD_INPUT),
    ("InvalidInstanceID.Malformed", 400, BadInputError, ExitCode.BAD_INPUT),
    ("MalformedPolicyDocument", 400, BadInputError, ExitCode.BAD_INPUT),
    ("SomeOtherFailure", 400, EksirError, ExitCode.INTERNAL),
]


@pytest.mark.parametrize(("code", "status", "kind", "exit_code"), NAMED_ROWS)
def test_a_client_error_becomes_the_eksir_error_of_its_row(
    code: str, status: int, kind: type[EksirError], exit_code: ExitCode
) -> None:
    error = translate_client_error(client_error(code, status), "describe instance i-1")
    assert type(error) is kind
    assert error.exit_code == exit_code
    assert error.message.startswith("describe instance i-1: ")
    assert "the service said no" in error.message


@pytest.mark.parametrize(
    ("codes", "kind"),
    [
        (aws.THROTTLED, TemporaryError),
        (aws.DENIED, PermissionDeniedError),
        (aws.NOT_FOUND, NotFoundError),
        (aws.INVALID, BadInputError),
    ],
)
def test_every_listed_code_maps_to_its_table_whatever_the_4xx_status(
    codes: frozenset[str], kind: type[EksirError]
) -> None:
    for code in sorted(codes):
        assert type(translate_client_error(client_error(code, 400), "call")) is kind, code


def test_throttling_wins_over_a_status_and_a_5xx_wins_over_a_denied_looking_code() -> None:
    assert type(translate_client_error(client_error("SlowDown", 403), "call")) is TemporaryError
    assert type(translate_client_error(client_error("AccessDenied", 503), "call")) is TemporaryError


def test_a_modelled_service_exception_is_translated_by_its_code() -> None:
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    missing = iam.exceptions.NoSuchEntityException(
        {"Error": {"Code": "NoSuchEntity", "Message": "The user with name x cannot be found."}}, "GetUser"
    )
    assert type(translate_client_error(missing, "read IAM user x")) is NotFoundError


SDK_ROWS = [
    (bx.NoCredentialsError(), PermissionDeniedError),
    (bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), PermissionDeniedError),
    (bx.CredentialRetrievalError(provider="sso", error_msg="expired"), PermissionDeniedError),
    (bx.TokenRetrievalError(provider="sso", error_msg="expired"), PermissionDeniedError),
    (bx.SSOTokenLoadError(error_msg="no cached token"), PermissionDeniedError),
    (bx.NoAuthTokenError(), PermissionDeniedError),
    (bx.ParamValidationError(report="Missing required parameter"), BadInputError),
    (bx.NoRegionError(), BadInputError),
    (bx.ProfileNotFound(profile="nope"), BadInputError),
    (bx.InvalidRegionError(region_name="not a region"), BadInputError),
    (bx.UnknownServiceError(service_name="ec3", known_service_names="ec2"), BadInputError),
    (bx.EndpointConnectionError(endpoint_url="https://ec2.example"), UnreachableError),
    (bx.ConnectTimeoutError(endpoint_url="https://ec2.example"), UnreachableError),
    (bx.ReadTimeoutError(endpoint_url="https://ec2.example"), UnreachableError),
    (bx.ConnectionClosedError(endpoint_url="https://ec2.example"), UnreachableError),
]


@pytest.mark.parametrize(("exc", "kind"), SDK_ROWS, ids=[type(e).__name__ for e, _ in SDK_ROWS])
def test_an_sdk_error_raised_before_any_answer_becomes_the_eksir_error_of_its_row(
    exc: Exception, kind: type[EksirError]
) -> None:
    error = translate_client_error(exc, "call")
    assert type(error) is kind
    assert error.exit_code in {ExitCode.PERMISSION_DENIED, ExitCode.BAD_INPUT, ExitCode.UNREACHABLE}


def test_no_region_says_how_to_give_one() -> None:
    assert "pass --region or set AWS_REGION" in translate_client_error(bx.NoRegionError(), "call").message


def test_aws_call_translates_sdk_errors_and_leaves_every_other_exception_alone() -> None:
    with pytest.raises(PermissionDeniedError, match="ExpiredToken") as caught, aws_call("list keys"):
        raise client_error("ExpiredToken")
    assert isinstance(caught.value.__cause__, ClientError)
    with pytest.raises(KeyError), aws_call("list keys"):
        raise KeyError("not an SDK error")


def test_the_one_config_retries_in_standard_mode_with_timeouts() -> None:
    config = client_config()
    assert config.retries == {"mode": "standard", "max_attempts": aws.MAX_ATTEMPTS}
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT, aws.READ_TIMEOUT)


def test_a_client_gets_the_endpoint_override_explicit_keys_and_the_config() -> None:
    client = new_client(
        "s3",
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="AKIA1",
        secret_access_key="s",
    )
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries["mode"] == "standard"
    assert client._request_signer._credentials.access_key == "AKIA1"


def test_an_unknown_profile_and_a_missing_region_are_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/eksir-test-config")
    with pytest.raises(BadInputError, match="no-such-profile"):
        new_session("no-such-profile")
    with pytest.raises(BadInputError, match="pass --region"):
        new_client("ec2", session=new_session())


def test_aws_clients_makes_each_client_once_whether_called_or_asked_by_name() -> None:
    aws = AwsClients(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    assert aws("s3") is aws.client("s3")
    assert aws.client("s3").meta.endpoint_url == "http://127.0.0.1:1"
