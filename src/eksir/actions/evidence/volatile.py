"""`ssm.capture_volatile`: processes, sockets, mounts, container state and writable layer of the suspect node.

Why SSM Run Command and a script shipped with eksir: volatile state dies with the node's network (an isolation
security group without egress also stops SSM), so it is taken first, with only what the node already has
(crictl/ctr, nsenter, ss, /proc); nothing is downloaded onto a suspect node, and docker is never assumed.
The script (`collect_volatile.sh`, package data) reports every missing tool in its manifest instead of
failing, archives its output with SHA256SUMS and uploads archive, manifest and `.sha256` sidecars with the
node's `aws s3 cp` when present; the command's output also goes to the bucket (OutputS3BucketName).

Why verify downloads everything: the step is only done when the evidence is in the case. Verify waits for the
invocation, lists the objects under the prefix, hashes each one (streamed), checks it against its sidecar and
enters it into the evidence manifest. The step is verified only when the node's own archive arrived: the
SSM command output alone (kept as evidence all the same) is excerpts, not the host evidence. A failed or
missing capture fails the step, and the playbook's node
isolation depends on this step being verified, so a failed capture never leads to cutting the node off.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StringConstraints

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
from eksir.actions.containment.casework import (
    CONTAINER_ID_PATTERN,
    INSTANCE_ID_PATTERN,
    UUID_PATTERN,
    require_live,
)
from eksir.actions.evidence import ssm_run
from eksir.actions.evidence.case_evidence import record_evidence
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError
from eksir.store.sensitivity import VOLATILE_DESCRIPTION

if TYPE_CHECKING:
    from types_boto3_s3.type_defs import ObjectTypeDef

SCRIPT_NAME = "collect_volatile.sh"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()/-]*$"
SSM_OUTPUT_DIR = "ssm-output/"
INLINE_LIMIT = 64 * 1024 * 1024
"""Objects up to this size are copied into the case; larger ones (memory images) are hashed and referenced."""
ContainerId = Annotated[str, StringConstraints(pattern=CONTAINER_ID_PATTERN)]


def collection_script() -> str:
    """The node script, read from the installed package (it ships as package data)."""
    return resources.files("eksir.actions.evidence").joinpath(SCRIPT_NAME).read_text(encoding="utf-8")


class CaptureVolatileParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    container_ids: tuple[ContainerId, ...] = ()
    pod_uid: str | None = Field(default=None, pattern=UUID_PATTERN)
    bucket: str = Field(pattern=BUCKET_PATTERN)
    prefix: str = Field(default="", pattern=PREFIX_PATTERN, max_length=512)
    timeout_seconds: int = Field(default=3600, ge=60, le=172800)
    wait_seconds: float = Field(default=900.0, ge=0, le=7200)
    upload_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    """After Success, how long to wait for the output in S3 (the status can come before the upload)."""
    host_os: Literal["linux", "bottlerocket"] = "linux"
    """`bottlerocket`: the script runs on the host through the admin container (`apiclient exec admin
    sheltie`), not in the control container where Run Command lands."""

    @property
    def key_prefix(self) -> str:
        return self.prefix if not self.prefix or self.prefix.endswith("/") else self.prefix + "/"


def capture_comment(ctx: ActionContext) -> str:
    return f"eksir {ssm_run.shell_safe(ctx.case_id)} capture_volatile"


def capture_commands(ctx: ActionContext, params: CaptureVolatileParams) -> list[str]:
    """The AWS-RunShellScript commands: validated parameters as environment, then the script on stdin."""
    env = {
        "EKSIR_CASE_ID": ssm_run.shell_safe(ctx.case_id),
        "EKSIR_INSTANCE_ID": params.instance_id,
        "EKSIR_CONTAINER_IDS": " ".join(params.container_ids),
        "EKSIR_POD_UID": params.pod_uid or "",
        "EKSIR_BUCKET": params.bucket,
        "EKSIR_PREFIX": params.key_prefix,
        "EKSIR_REGION": ctx.region or "",
    }
    if params.host_os == "bottlerocket":
        return ssm_run.host_shell_command(env, collection_script())
    return ssm_run.script_command(env, collection_script())


def _objects(ctx: ActionContext, bucket: str, prefix: str) -> list[ObjectTypeDef]:
    with aws_call(f"list evidence objects in s3://{bucket}/{prefix}"):
        pages = ctx.aws("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", [])]


def _fetch(ctx: ActionContext, bucket: str, obj: Mapping[str, Any]) -> tuple[str, bytes | None, str | None]:
    """(sha256, the bytes if small enough to keep in the case, version id); streamed, not held in memory."""
    digest = hashlib.sha256()
    keep = int(obj.get("Size", 0)) <= INLINE_LIMIT
    chunks: list[bytes] = []
    with aws_call(f"download s3://{bucket}/{obj['Key']}"):
        response = ctx.aws("s3").get_object(Bucket=bucket, Key=obj["Key"])
        for chunk in response["Body"].iter_chunks(1024 * 1024):
            digest.update(chunk)
            if keep:
                chunks.append(chunk)
    return digest.hexdigest(), b"".join(chunks) if keep else None, response.get("VersionId")


def _sidecar_digest(data: bytes | None) -> str | None:
    text = (data or b"").decode("utf-8", "replace").split()
    return text[0].lower() if text else None


def _manifest_findings(data: bytes) -> list[str]:
    """Lines of the node manifest that are not `ok`: absent tools, failed commands, skipped uploads."""
    findings = []
    for line in data.decode("utf-8", "replace").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 4 and parts[2] != "ok":  # kind, name, status, detail
            findings.append(f"{parts[0]} {parts[1]}: {parts[2]} ({parts[3]})")
    return findings


def _no_host_evidence(stdout: str, recorded: int) -> str:
    """Why a capture without the node's archive is not verified, whatever the command printed.

    The SSM output holds at most excerpts (a process table, sockets): the container's writable layer, the
    runtime state and the hashes of the collection exist only in the archive. Verify says where it is.
    """
    kept = ssm_run.marker(stdout, "eksir-kept-on-node")
    where = (
        f"the node could not upload it: it is kept on the node in {kept}"
        if kept
        else "the node uploaded nothing (no aws CLI, or its role cannot write to the bucket?)"
    )
    return (
        f"host evidence missing: no archive from the node reached the bucket, {where}; only the SSM command "
        f"output arrived ({recorded} object(s) hashed into the case)"
    )


@register_action
class CaptureVolatile(Action[CaptureVolatileParams]):
    spec = ActionSpec(
        id="ssm.capture_volatile",
        phase=Phase.EVIDENCE,
        title="Capture volatile evidence on the node over SSM Run Command",
        iam_actions=(
            "ec2:DescribeInstances",
            "ssm:SendCommand",
            "ssm:ListCommands",
            "ssm:GetCommandInvocation",
            "s3:ListBucket",
            "s3:GetObject",
        ),
        destructive=False,
        reversible=False,
        description="crictl/ctr/nsenter/ss/proc collection, uploaded by the node; hashed into the case.",
    )
    params_type = CaptureVolatileParams

    def check(self, ctx: ActionContext, params: CaptureVolatileParams) -> CheckOutcome:
        failed = ssm_run.not_running(ctx, params.instance_id, "its volatile state cannot be captured")
        if failed is not None:
            return failed
        try:
            with aws_call(f"look up evidence bucket {params.bucket}"):
                ctx.aws("s3").list_objects_v2(Bucket=params.bucket, Prefix=params.key_prefix, MaxKeys=1)
        except NotFoundError:
            return CheckOutcome(ok=False, detail=f"evidence bucket {params.bucket} does not exist")
        existing = ssm_run.find_command(ctx, params.instance_id, capture_comment(ctx))
        return CheckOutcome(
            ok=True,
            detail=f"{params.instance_id} is running; evidence goes to s3://{params.bucket}/{params.key_prefix}",
            warnings=self._warnings(params),
            already_applied=existing is not None,
        )

    @staticmethod
    def _warnings(params: CaptureVolatileParams) -> tuple[str, ...]:
        return (
            "the node needs a running SSM Agent and an instance role with SSM core permissions and "
            f"s3:PutObject on s3://{params.bucket}/{params.key_prefix}*",
            "only tools already on the node are used: a missing crictl/ctr/nsenter/avml is reported in the "
            "manifest; memory is captured only if avml is already installed",
            "Bottlerocket: the script runs through the admin container (apiclient exec admin sheltie), which "
            "must be enabled; the host has no aws CLI, so the archive stays on the node unless copied by hand"
            if params.host_os == "bottlerocket"
            else "a Bottlerocket node not recognised as such would run the script in its control container",
        )

    def plan(self, ctx: ActionContext, params: CaptureVolatileParams) -> PlannedChange:
        digest = hashlib.sha256(collection_script().encode()).hexdigest()
        targets = ", ".join(params.container_ids) or "(no container id known: node-wide only)"
        return PlannedChange(
            summary=f"Run {SCRIPT_NAME} on {params.instance_id} over SSM and collect its output",
            diff=(
                f"+ SSM {ssm_run.DOCUMENT} on {params.instance_id} (script sha256 {digest})",
                f"+ containers: {targets}",
                f"+ s3://{params.bucket}/{params.key_prefix} (archive, manifest, .sha256; command output "
                f"under {SSM_OUTPUT_DIR})",
            ),
            blast_radius=(
                "the node runs read-only collection (CPU and disk I/O for minutes); a staging directory "
                "under /var/tmp is removed after upload",
            ),
            warnings=self._warnings(params),
        )

    def apply(self, ctx: ActionContext, params: CaptureVolatileParams) -> dict[str, Any]:
        """Send the collection command, or find the one already sent for this case (idempotent)."""
        require_live(ctx, self.spec)
        comment = capture_comment(ctx)
        existing = ssm_run.find_command(ctx, params.instance_id, comment)
        if existing is not None:
            command_id, reused = str(existing["CommandId"]), True
        else:
            command_id = ssm_run.send(
                ctx,
                params.instance_id,
                capture_commands(ctx, params),
                comment,
                timeout_s=params.timeout_seconds,
                output=(params.bucket, params.key_prefix + SSM_OUTPUT_DIR),
            )
            reused = False
        return {
            "command_id": command_id,
            "instance_id": params.instance_id,
            "bucket": params.bucket,
            "prefix": params.key_prefix,
            "reused": reused,
        }

    def verify(
        self, ctx: ActionContext, params: CaptureVolatileParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        command_id = str(applied["command_id"])
        deadline = time.monotonic() + params.wait_seconds
        result = ssm_run.wait(ctx, command_id, params.instance_id, params.wait_seconds)
        status = str(result.get("Status"))
        if status != "Success":
            stderr = str(result.get("StandardErrorContent") or "")[-500:]
            detail = f"capture command {command_id} is {status} ({result.get('StatusDetails', '')})"
            return VerifyOutcome(ok=False, detail=detail + (f": {stderr}" if stderr else ""))
        stdout = str(result.get("StandardOutputContent") or "")
        deadline = min(deadline, time.monotonic() + params.upload_wait_seconds)
        ssm_run.await_objects(ctx, params.bucket, self._done_keys(params, command_id, stdout), deadline)
        return self._collect(ctx, params, command_id, stdout)

    @staticmethod
    def _stdout_key(params: CaptureVolatileParams, command_id: str) -> str:
        return ssm_run.output_key(params.key_prefix + SSM_OUTPUT_DIR, command_id, params.instance_id)

    def _done_keys(self, params: CaptureVolatileParams, command_id: str, stdout: str) -> list[str]:
        """Objects uploaded last: the agent's stdout (once the script ended), or the manifest's sidecar."""
        keys = [self._stdout_key(params, command_id)]
        base = ssm_run.marker(stdout, "eksir-base")
        if base:
            keys.append(f"{params.key_prefix}{base}.manifest.tsv.sha256")
        return keys

    def _collect(
        self, ctx: ActionContext, params: CaptureVolatileParams, command_id: str, stdout: str
    ) -> VerifyOutcome:
        prefix = params.key_prefix
        output = _objects(ctx, params.bucket, f"{prefix}{SSM_OUTPUT_DIR}{command_id}/")
        fetched = {o["Key"]: _fetch(ctx, params.bucket, o) for o in output}
        full = fetched.get(self._stdout_key(params, command_id), ("", None, None))[1]
        if full is not None:  # the invocation's copy stops at 24,000 characters; S3 holds all of it
            stdout = full.decode("utf-8", "replace")
        node = self._node_objects(ctx, params, ssm_run.marker(stdout, "eksir-base"))
        if not node and not output:
            return VerifyOutcome(
                ok=False, detail=f"the capture succeeded but nothing is in s3://{params.bucket}/{prefix}"
            )
        fetched.update({o["Key"]: _fetch(ctx, params.bucket, o) for o in node})
        problems = self._sidecar_mismatches(fetched)
        items = [self._enter(ctx, params.bucket, key, fetched[key]) for key in sorted(fetched)]
        findings = [
            f
            for key, (_, data, _) in fetched.items()
            if key.endswith(".manifest.tsv")
            for f in _manifest_findings(data or b"")
        ]
        archives = [k for k in fetched if k.endswith(".tar.gz")]
        if not archives:
            problems.append(_no_host_evidence(stdout, len(items)))
        detail = (
            "; ".join(problems)
            if problems
            else f"{len(items)} object(s) hashed into the case ({len(archives)} archive(s))"
            + (f"; node reported {len(findings)} gap(s): {'; '.join(findings[:6])}" if findings else "")
        )
        return VerifyOutcome(
            ok=not problems,
            detail=detail,
            observed={"command_id": command_id, "evidence": items, "node_findings": findings},
        )

    @staticmethod
    def _node_objects(
        ctx: ActionContext, params: CaptureVolatileParams, base: str | None
    ) -> list[ObjectTypeDef]:
        """The node's own uploads under the prefix (this capture's only, when its base name is known)."""
        prefix = params.key_prefix
        node = [
            o
            for o in _objects(ctx, params.bucket, prefix)
            if not o["Key"].startswith(prefix + SSM_OUTPUT_DIR)
        ]
        return [o for o in node if o["Key"][len(prefix) :].startswith(base)] if base else node

    @staticmethod
    def _sidecar_mismatches(fetched: dict[str, tuple[str, bytes | None, str | None]]) -> list[str]:
        problems = []
        for key, (_, data, _) in fetched.items():
            target = key.removesuffix(".sha256")
            if key.endswith(".sha256") and target in fetched:
                claimed = _sidecar_digest(data)
                if claimed != fetched[target][0]:
                    problems.append(f"sha256 of {target} is {fetched[target][0]}, the node said {claimed}")
        return problems

    def _enter(
        self, ctx: ActionContext, bucket: str, key: str, got: tuple[str, bytes | None, str | None]
    ) -> dict[str, Any]:
        digest, data, version = got
        source = f"s3://{bucket}/{key}" + (f"?versionId={version}" if version else "")
        name = key.rsplit("/", 1)[-1] if SSM_OUTPUT_DIR not in key else key.split(SSM_OUTPUT_DIR, 1)[1]
        if data is not None:
            return record_evidence(
                ctx,
                name,
                data,
                source=source,
                description=f"{VOLATILE_DESCRIPTION}, as uploaded to {source}",
                media_type="application/octet-stream",
            )
        reference = json.dumps({"source": source, "sha256": digest, "kept_in": "s3"}, sort_keys=True)
        record = record_evidence(
            ctx,
            name + ".s3ref.json",
            reference.encode(),
            source=source,
            description=f"too large to copy into the case: hashed (sha256 {digest}) and kept in S3",
        )
        return {**record, "object_sha256": digest}

    def rollback(self, ctx: ActionContext, params: CaptureVolatileParams, applied: dict[str, Any]) -> None:
        """Nothing to undo: a capture changes nothing on the node, and its output is evidence."""
