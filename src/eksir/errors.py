"""eksir's own error types and the one table of process exit codes.

Every failure a user can cause or meet (bad input, unreachable cluster, denied permission) is raised as an
`EksirError` subclass carrying its exit code, so the CLI can print one line and exit without a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README; stable across releases."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    BAD_INPUT = 3
    NOT_A_FINDING = 4
    NOT_HANDLED = 5
    CASE_INVALID = 6
    UNREACHABLE = 7
    PERMISSION_DENIED = 8
    STEP_FAILED = 9
    NOT_FOUND = 10
    LAB_FAILED = 11
    REFUSED = 12


class EksirError(Exception):
    """Base of every error eksir reports to the user as one line."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        """The service's own error code when an AWS error was translated (`BadRequestException`), else ""."""


class UsageError(EksirError):
    """The command line asks for something it must spell out (e.g. `--approve all` without `--yes`)."""

    exit_code = ExitCode.USAGE


class BadInputError(EksirError):
    """The input cannot be read or parsed (empty, truncated, not JSON, unreadable path)."""

    exit_code = ExitCode.BAD_INPUT


class NotAFindingError(EksirError):
    """The input is valid JSON but is not a GuardDuty finding this tool can use."""

    exit_code = ExitCode.NOT_A_FINDING


class NotHandledError(EksirError):
    """A GuardDuty Kubernetes finding of a type this playbook does not handle."""

    exit_code = ExitCode.NOT_HANDLED


class CaseInvalidError(EksirError):
    """A case bundle failed verification or is unusable (altered file, broken chain, unknown case)."""

    exit_code = ExitCode.CASE_INVALID


class NotFoundError(EksirError):
    """A named resource (case, pod, node, principal) does not exist."""

    exit_code = ExitCode.NOT_FOUND


class UnreachableError(EksirError):
    """A cluster or AWS endpoint could not be reached."""

    exit_code = ExitCode.UNREACHABLE


class PermissionDeniedError(EksirError):
    """The caller lacks an IAM or RBAC permission the step needs."""

    exit_code = ExitCode.PERMISSION_DENIED


class TemporaryError(EksirError):
    """Throttling or a server-side error; retrying later may succeed."""

    exit_code = ExitCode.UNREACHABLE


class StepFailedError(EksirError):
    """A plan step failed to apply or verify."""

    exit_code = ExitCode.STEP_FAILED


class LabError(EksirError):
    """The local lab could not be built, started, seeded or stopped."""

    exit_code = ExitCode.LAB_FAILED


class RefusedError(EksirError):
    """eksir refuses an unsafe request (closing an incomplete case, applying without approval)."""

    exit_code = ExitCode.REFUSED
