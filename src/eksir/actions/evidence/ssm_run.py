"""SSM Run Command as the actions use it: send a shell script to one node, find it again, wait for it.

Why one place: capture and pause both run shell on a suspect node, and both must be idempotent across
process restarts. A command carries a comment naming the case and the step, so a re-run finds the command it
already sent (ListCommands) instead of sending a second one. Every value that reaches the node's shell comes
from validated parameters and is quoted again with `shlex.quote`, because a finding is attacker-influenced.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eksir.actions.base import ActionContext, CheckOutcome
from eksir.actions.containment.ec2_isolation import describe_instance
from eksir.clients.aws import aws_call
from eksir.errors import EksirError, NotFoundError

if TYPE_CHECKING:
    from types_boto3_ssm.type_defs import CommandTypeDef

DOCUMENT = "AWS-RunShellScript"
TERMINAL = frozenset(
    {"Success", "Cancelled", "TimedOut", "Failed", "Cancelling", "Terminated", "Undeliverable"}
)
LIVE_OR_DONE = frozenset({"Pending", "InProgress", "Success"})
POLL_INTERVAL_S = 3.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
HEREDOC_END = "EKSIR_SCRIPT_END"
OUTPUT_PLUGIN_DIR = "awsrunShellScript/0.awsrunShellScript"
UPLOAD_POLL_S = 1.0
INVOCATION_OUTPUT_LIMIT = 24_000
"""GetCommandInvocation returns at most this many characters of stdout; the S3 copy is complete."""


def shell_safe(value: str) -> str:
    """A value reduced to characters that mean nothing to a shell (case ids go into file names)."""
    return _UNSAFE.sub("_", value)[:128]


def script_command(env: Mapping[str, str], script: str) -> list[str]:
    """The `commands` of AWS-RunShellScript: environment assignments, then the script fed to bash on stdin.

    The script is never written to the node's disk by us; the heredoc delimiter cannot occur in it.
    """
    if any(line.strip() == HEREDOC_END for line in script.splitlines()):
        raise ValueError(f"the script contains the heredoc delimiter {HEREDOC_END}")
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    return [f"{assignments} bash -s <<'{HEREDOC_END}'", script, HEREDOC_END]


def host_shell_command(env: Mapping[str, str], script: str) -> list[str]:
    """The same script for a Bottlerocket node, run on the host through its admin container.

    Why: on Bottlerocket, Run Command lands in the control container, which has its own /proc and no crictl,
    ctr or host files; `apiclient exec admin sheltie` opens a root shell in the host's namespaces (the admin
    container must be enabled). sheltie's shell reads the script on stdin, so the environment is exported
    at its top instead of being set on the command line.
    """
    if any(line.strip() == HEREDOC_END for line in script.splitlines()):
        raise ValueError(f"the script contains the heredoc delimiter {HEREDOC_END}")
    exports = "export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    return [f"apiclient exec admin sheltie <<'{HEREDOC_END}'", exports, script, HEREDOC_END]


def not_running(ctx: ActionContext, instance_id: str, consequence: str) -> CheckOutcome | None:
    """The failed check for an instance that cannot run an SSM command (missing or not running), else None.

    `consequence` says what that means for the action, e.g. "nothing to pause".
    """
    try:
        instance = describe_instance(ctx, instance_id)
    except NotFoundError as exc:
        return CheckOutcome(ok=False, detail=exc.message)
    state = (instance.get("State") or {}).get("Name")
    if state != "running":
        return CheckOutcome(ok=False, detail=f"{instance_id} is {state}: {consequence}")
    return None


def find_command(ctx: ActionContext, instance_id: str, comment: str) -> CommandTypeDef | None:
    """The newest command this step already sent to the instance that is pending, running or succeeded."""
    with aws_call(f"list SSM commands sent to {instance_id}"):
        pages = ctx.aws("ssm").get_paginator("list_commands").paginate(InstanceId=instance_id)
        commands = [c for page in pages for c in page.get("Commands", [])]
    mine = [
        c
        for c in commands
        if c.get("Comment") == comment
        and c.get("DocumentName") == DOCUMENT
        and c.get("Status") in LIVE_OR_DONE
    ]
    mine.sort(key=lambda c: str(c.get("RequestedDateTime", "")))
    return mine[-1] if mine else None


def send(
    ctx: ActionContext,
    instance_id: str,
    commands: list[str],
    comment: str,
    *,
    timeout_s: int,
    output: tuple[str, str] | None = None,
) -> str:
    """Send the commands to one instance; returns the command id. `output` is (bucket, key prefix)."""
    kwargs: dict[str, Any] = {
        "InstanceIds": [instance_id],
        "DocumentName": DOCUMENT,
        "Comment": comment[:100],
        "Parameters": {"commands": commands, "executionTimeout": [str(timeout_s)]},
        "TimeoutSeconds": 600,
    }
    if output is not None:
        kwargs["OutputS3BucketName"], kwargs["OutputS3KeyPrefix"] = output
    with aws_call(f"send SSM Run Command to {instance_id}"):
        return str(ctx.aws("ssm").send_command(**kwargs)["Command"]["CommandId"])


def invocation(ctx: ActionContext, command_id: str, instance_id: str) -> dict[str, Any]:
    """The command's invocation on the instance; `{"Status": "Pending"}` until SSM has registered it."""
    try:
        with aws_call(f"read SSM command {command_id} on {instance_id}"):
            result: dict[str, Any] = dict(
                ctx.aws("ssm").get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            )
    except EksirError as exc:
        if "InvocationDoesNotExist" in exc.message:
            return {"Status": "Pending", "StatusDetails": "invocation not registered yet"}
        raise
    return result


def wait(ctx: ActionContext, command_id: str, instance_id: str, wait_s: float) -> dict[str, Any]:
    """Poll the invocation until it is terminal or `wait_s` has passed; returns the last invocation read."""
    deadline = time.monotonic() + wait_s
    while True:
        result = invocation(ctx, command_id, instance_id)
        if result.get("Status") in TERMINAL or time.monotonic() >= deadline:
            return result
        time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))


def marker(output: str, key: str) -> str | None:
    """The value of an `eksir-...: value` line the node script printed, or None."""
    for line in output.splitlines():
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip()
    return None


def output_key(prefix: str, command_id: str, instance_id: str, stream: str = "stdout") -> str:
    """Where the SSM agent uploads a command's stdout/stderr under `OutputS3KeyPrefix`."""
    parts = [p for p in (prefix.strip("/"), command_id, instance_id, OUTPUT_PLUGIN_DIR, stream) if p]
    return "/".join(parts)


def object_exists(ctx: ActionContext, bucket: str, key: str) -> bool:
    """True when `key` is in the bucket (listed, not read: a missing key is an answer, not an error)."""
    with aws_call(f"look for s3://{bucket}/{key}"):
        listed = ctx.aws("s3").list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(o.get("Key") == key for o in listed.get("Contents", []))


def await_objects(ctx: ActionContext, bucket: str, keys: list[str], deadline: float) -> bool:
    """Wait until any of `keys` is in the bucket or the monotonic `deadline` passes; True when one is.

    Why wait: a command's status can read Success before the agent has uploaded its output (and moto
    answers Success at once), so a verification that read S3 right away would find nothing.
    """
    while True:
        if any(object_exists(ctx, bucket, key) for key in keys):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(UPLOAD_POLL_S, max(0.0, deadline - time.monotonic())))


def read_object(ctx: ActionContext, bucket: str, key: str, limit: int = 16 * 1024 * 1024) -> str | None:
    """The object's text (at most `limit` bytes), or None when it is not there."""
    if not object_exists(ctx, bucket, key):
        return None
    with aws_call(f"read s3://{bucket}/{key}"):
        body = ctx.aws("s3").get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read(limit)).decode("utf-8", "replace")
