"""`ssm.pause_container`: freeze the suspect container's processes (cgroup freezer) with `ctr task pause`.

Why pause and not stop or kill: a paused task keeps its memory, sockets and files exactly as they are, so
evidence stays collectable, yet nothing in it runs (no exfiltration, no cleanup by the attacker). Kubernetes
does not notice: probes may fail and the kubelet may restart the container, which is why this is a separate,
approved step that runs only after the volatile capture. crictl has no pause; `ctr -n k8s.io` (the CRI
namespace) does, and it is on every containerd node.

The node script pauses only a RUNNING task (so re-running is a no-op) and prints the task's state afterwards
(`eksir-state: PAUSED`). Verify waits for that command, then reads the state back with a separate read-only
command (`status`: the same script, acting on no state), because a task resumed since (by a person, or a
kubelet restarting it) is not contained: verify accepts nothing but PAUSED from the read-back. Rollback
resumes only a PAUSED task.

With an evidence bucket, the command's output also goes to S3 (`<prefix>ssm-output/`), so the state the node
reported is kept beside the capture; when the invocation carries no state line (its status can be read before
the agent has reported, and moto answers Success with no output), verify waits, bounded by `wait_seconds`,
for the agent's stdout object in S3 and reads the state from it.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    VerifyOutcome,
)
from eksir.actions.containment.casework import CONTAINER_ID_PATTERN, INSTANCE_ID_PATTERN, require_live
from eksir.actions.evidence import ssm_run
from eksir.actions.evidence.volatile import BUCKET_PATTERN, PREFIX_PATTERN, SSM_OUTPUT_DIR
from eksir.actions.registry import register_action
from eksir.errors import EksirError

STATE_MARKER = "eksir-state"
# $1 = container id (validated hex), $2 = the state to act on, $3 = the ctr verb. ctr is looked for on PATH,
# then in EKSIR_TOOL_DIRS (as in collect_volatile.sh: SSM's PATH can be minimal).
TASK_SCRIPT = r"""
ID="$1"; FROM="$2"; VERB="$3"
CTR=$(command -v ctr 2>/dev/null)
for d in ${EKSIR_TOOL_DIRS-/usr/local/bin /usr/bin}; do
  [ -n "$CTR" ] || { [ -x "$d/ctr" ] && CTR="$d/ctr"; }
done
if [ -z "$CTR" ]; then echo "eksir-state: NO-CTR"; echo "ctr is not on this node" >&2; exit 3; fi
task() { "$CTR" -n k8s.io tasks ls 2>/dev/null | awk -v id="$ID" 'index($1, id) == 1 {print $1, $3; exit}'; }
LINE=$(task)
if [ -z "$LINE" ]; then echo "eksir-state: NOT-FOUND"; echo "no containerd task $ID" >&2; exit 4; fi
FULL=${LINE%% *}; STATE=${LINE#* }
if [ "$STATE" = "$FROM" ]; then "$CTR" -n k8s.io tasks "$VERB" "$FULL" || exit 5; fi
LINE=$(task)
echo "eksir-state: ${LINE#* }"
""".strip()


class PauseContainerParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    container_id: str = Field(pattern=CONTAINER_ID_PATTERN)
    wait_seconds: float = Field(default=120.0, ge=0, le=1800)
    bucket: str | None = Field(default=None, pattern=BUCKET_PATTERN)
    prefix: str = Field(default="", pattern=PREFIX_PATTERN, max_length=512)

    @property
    def output(self) -> tuple[str, str] | None:
        """(bucket, key prefix) for the command's output, or None without an evidence bucket."""
        if self.bucket is None:
            return None
        prefix = self.prefix if not self.prefix or self.prefix.endswith("/") else self.prefix + "/"
        return self.bucket, prefix + SSM_OUTPUT_DIR


def task_commands(container_id: str, verb: str) -> list[str]:
    """The AWS-RunShellScript commands that pause (or resume) the task, then print its state.

    `status` acts on no state (the script's `FROM` matches none): it only prints the task's state.
    """
    from_state = {"pause": "RUNNING", "resume": "PAUSED"}.get(verb, "-")
    return [
        f"bash -s -- {container_id} {from_state} {verb} <<'{ssm_run.HEREDOC_END}'",
        TASK_SCRIPT,
        ssm_run.HEREDOC_END,
    ]


def _comment(ctx: ActionContext, verb: str, container_id: str) -> str:
    return f"eksir {ssm_run.shell_safe(ctx.case_id)} {verb} {container_id[:12]}"


def _run(ctx: ActionContext, params: PauseContainerParams, verb: str) -> str:
    """Send the pause/resume command (or find the one already sent); returns the command id."""
    comment = _comment(ctx, verb, params.container_id)
    existing = ssm_run.find_command(ctx, params.instance_id, comment)
    if existing is not None and verb == "pause":
        return str(existing["CommandId"])
    return ssm_run.send(
        ctx,
        params.instance_id,
        task_commands(params.container_id, verb),
        comment,
        timeout_s=120,
        output=params.output,
    )


def observed_state(result: dict[str, Any]) -> str | None:
    return ssm_run.marker(str(result.get("StandardOutputContent") or ""), STATE_MARKER)


def _outcome(
    ctx: ActionContext, params: PauseContainerParams, command_id: str
) -> tuple[dict[str, Any], str | None]:
    """The invocation and the task state the node reported: from the invocation, else from S3 (waited for)."""
    deadline = time.monotonic() + params.wait_seconds
    result = ssm_run.wait(ctx, command_id, params.instance_id, params.wait_seconds)
    state = observed_state(result)
    if state is None and params.output is not None and result.get("Status") == "Success":
        bucket, prefix = params.output
        key = ssm_run.output_key(prefix, command_id, params.instance_id)
        if ssm_run.await_objects(ctx, bucket, [key], deadline):
            state = ssm_run.marker(ssm_run.read_object(ctx, bucket, key) or "", STATE_MARKER)
    return result, state


@register_action
class PauseContainer(Action[PauseContainerParams]):
    spec = ActionSpec(
        id="ssm.pause_container",
        phase=Phase.CONTAINMENT,
        title="Pause the suspect container (ctr task pause) over SSM",
        iam_actions=(
            "ec2:DescribeInstances",
            "ssm:SendCommand",
            "ssm:ListCommands",
            "ssm:GetCommandInvocation",
        ),
        destructive=True,
        reversible=True,
        description="Freezes the container's processes, memory kept; rollback resumes them.",
    )
    params_type = PauseContainerParams

    def check(self, ctx: ActionContext, params: PauseContainerParams) -> CheckOutcome:
        failed = ssm_run.not_running(ctx, params.instance_id, "nothing to pause")
        if failed is not None:
            return failed
        sent = ssm_run.find_command(ctx, params.instance_id, _comment(ctx, "pause", params.container_id))
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} is running",
            warnings=(
                "liveness probes of a paused container fail: the kubelet may restart it (the paused "
                "process is then lost), so capture volatile evidence first",
            ),
            already_applied=sent is not None,
        )

    def plan(self, ctx: ActionContext, params: PauseContainerParams) -> PlannedChange:
        return PlannedChange(
            summary=f"Pause container {params.container_id[:12]} on {params.instance_id}",
            diff=(
                "- task state: RUNNING",
                "+ task state: PAUSED (ctr -n k8s.io tasks pause)",
            ),
            blast_radius=(
                f"the container {params.container_id[:12]} stops serving; other pods are unaffected",
            ),
        )

    def apply(self, ctx: ActionContext, params: PauseContainerParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        return {"command_id": _run(ctx, params, "pause"), "instance_id": params.instance_id}

    def verify(
        self, ctx: ActionContext, params: PauseContainerParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        paused, _ = _outcome(ctx, params, str(applied["command_id"]))
        comment = _comment(ctx, "status", params.container_id)
        commands = task_commands(params.container_id, "status")
        read_back = ssm_run.send(
            ctx, params.instance_id, commands, comment, timeout_s=120, output=params.output
        )
        result, state = _outcome(ctx, params, read_back)
        ok = paused.get("Status") == "Success" and result.get("Status") == "Success" and state == "PAUSED"
        detail = (
            f"containerd reports task {params.container_id[:12]} {state or 'state not reported'} (read back)"
        )
        if paused.get("Status") != "Success":
            result = paused
        if result.get("Status") != "Success":
            detail += (
                f" (command {result.get('Status')}: {str(result.get('StandardErrorContent') or '')[-300:]})"
            )
        return VerifyOutcome(ok=ok, detail=detail, observed={"state": state, "status": result.get("Status")})

    def rollback(self, ctx: ActionContext, params: PauseContainerParams, applied: dict[str, Any]) -> None:
        """Resume the task and wait until containerd reports it RUNNING; raises EksirError otherwise."""
        require_live(ctx, self.spec)
        result, state = _outcome(ctx, params, _run(ctx, params, "resume"))
        if result.get("Status") != "Success" or state != "RUNNING":
            raise EksirError(
                f"resume of container {params.container_id[:12]} on {params.instance_id}: command "
                f"{result.get('Status')}, task {state or 'state not reported'}"
            )
