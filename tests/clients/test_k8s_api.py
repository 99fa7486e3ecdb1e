"""clients/k8s_api.py: the write guard that read-modify-write loops rely on, and the delete preconditions."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from eksir.clients.k8s_api import ConflictError, delete_options, k8s_write
from eksir.errors import ExitCode, NotFoundError, PermissionDeniedError


def test_a_409_is_a_conflict_the_caller_can_retry_after_a_re_read() -> None:
    with pytest.raises(ConflictError, match="replace aws-auth") as caught, k8s_write("replace aws-auth"):
        raise ApiException(status=409, reason="Conflict")
    assert caught.value.exit_code == ExitCode.UNREACHABLE  # a TemporaryError when nobody retries it


@pytest.mark.parametrize(("status", "kind"), [(403, PermissionDeniedError), (404, NotFoundError)])
def test_any_other_api_answer_is_the_eksir_error_of_k8s_call(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind), k8s_write("replace aws-auth"):
        raise ApiException(status=status, reason="no")


def test_a_connection_error_passes_through_for_the_caller() -> None:
    with pytest.raises(ConnectionRefusedError), k8s_write("replace aws-auth"):
        raise ConnectionRefusedError


def test_delete_options_carry_the_uid_and_resource_version_preconditions() -> None:
    options = delete_options("uid-1", "42")
    assert (options.preconditions.uid, options.preconditions.resource_version) == ("uid-1", "42")
    assert delete_options("uid-1").preconditions.resource_version is None
