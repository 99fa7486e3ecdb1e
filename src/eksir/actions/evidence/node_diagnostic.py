"""`k8s.collect_node_diagnostic`: the node's log bundle through EKS's `NodeDiagnostic` resource (Auto Mode).

Why: an EKS Auto Mode node allows neither SSH nor SSM, so `ssm.capture_volatile` cannot run there. The EKS
node monitoring agent (built into Auto Mode, an add-on elsewhere) watches `NodeDiagnostic` objects
(`eks.amazonaws.com/v1alpha1`, cluster-scoped, named exactly after the node) and uploads a tarball of the
node's logs and state (kubelet, containerd, kernel, networking) with an HTTP PUT to the URL in
`spec.logCapture.destination`. eksir presigns that URL for the case's evidence bucket (a local computation:
nothing is called), creates the object, and `verify` proves the bundle arrived: it downloads it, hashes it and
enters it into the case's evidence manifest. The object carries the case label; rollback deletes it (the
bundle, being evidence, stays).

Limits said plainly: the agent writes the bundle, not eksir; a NodeDiagnostic for the node that already
exists (someone else's collection) is left alone and the step fails with its owner named; the presigned URL
is valid for `url_seconds` (the agent must pick the object up within that time).
"""

from __future__ import annotations

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
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.casework import CASE_LABEL, K8S_NAME_PATTERN, require_live
from eksir.actions.evidence.case_evidence import record_evidence
from eksir.actions.evidence.volatile import BUCKET_PATTERN, PREFIX_PATTERN
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import custom, k8s_write
from eksir.errors import NotFoundError, StepFailedError

GROUP, VERSION, PLURAL = "eks.amazonaws.com", "v1alpha1", "nodediagnostics"
_DONE = ("Success", "SuccessWithErrors")
_RBAC = (RbacRule((GROUP,), (PLURAL,), ("get", "create", "delete")),)


class NodeDiagnosticParams(ActionParams):
    node_name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)
    bucket: str = Field(pattern=BUCKET_PATTERN)
    key: str = Field(pattern=PREFIX_PATTERN, min_length=1, max_length=1024)
    url_seconds: int = Field(default=3600, ge=300, le=43200)


def _read(ctx: ActionContext, name: str) -> dict[str, Any] | None:
    """The NodeDiagnostic named after the node, or None. Raises PermissionDeniedError and the like."""
    try:
        with k8s_call(f"read NodeDiagnostic {name}"):
            found = custom(ctx.k8s()).get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    except NotFoundError:
        return None
    return dict(found) if isinstance(found, dict) else None


def _ours(ctx: ActionContext, obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(CASE_LABEL) == ctx.case_id)


def _outcome(obj: dict[str, Any] | None) -> tuple[str | None, str]:
    """(reason, message) of the log capture from the agent's status; (None, "") while it runs."""
    for capture in ((obj or {}).get("status") or {}).get("captureStatuses") or []:
        completed = ((capture or {}).get("state") or {}).get("completed") or {}
        if completed.get("reason"):
            return str(completed["reason"]), str(completed.get("message") or "")
    return None, ""


@register_action
class CollectNodeDiagnostic(Action[NodeDiagnosticParams]):
    spec = ActionSpec(
        id="k8s.collect_node_diagnostic",
        phase=Phase.EVIDENCE,
        title="Collect the node's log bundle through a NodeDiagnostic (EKS node monitoring agent)",
        iam_actions=("s3:PutObject", "s3:GetObject", "s3:ListBucket"),
        rbac=_RBAC,
        destructive=False,
        reversible=True,
        description="Creates NodeDiagnostic <node> with a presigned S3 PUT URL; the agent uploads the bundle "
        "which verify hashes into the case. The URL is presigned with the caller's s3:PutObject.",
    )
    params_type = NodeDiagnosticParams

    def check(self, ctx: ActionContext, params: NodeDiagnosticParams) -> CheckOutcome:
        existing = _read(ctx, params.node_name)
        if existing is not None and not _ours(ctx, existing):
            return CheckOutcome(
                ok=False,
                detail=f"NodeDiagnostic {params.node_name} already exists and is not this case's: "
                "another collection is under way on the node; delete it or wait",
            )
        return CheckOutcome(
            ok=True,
            detail=f"node {params.node_name}: bundle to s3://{params.bucket}/{params.key}",
            already_applied=existing is not None,
        )

    def plan(self, ctx: ActionContext, params: NodeDiagnosticParams) -> PlannedChange:
        return PlannedChange(
            summary=f"Create NodeDiagnostic {params.node_name} (log bundle to s3://{params.bucket}/{params.key})",
            diff=(f"+ nodediagnostic.{GROUP}/{params.node_name} logCapture -> presigned PUT URL",),
            blast_radius=("the node monitoring agent packs the node's logs: no pod or node is changed",),
        )

    def apply(self, ctx: ActionContext, params: NodeDiagnosticParams) -> dict[str, Any]:
        """Create the object (once); returns its uid. Raises StepFailedError when someone else's exists."""
        require_live(ctx, self.spec)
        existing = _read(ctx, params.node_name)
        if existing is not None:
            if not _ours(ctx, existing):
                raise StepFailedError(f"NodeDiagnostic {params.node_name} exists and is not this case's")
            return {"uid": existing["metadata"]["uid"], "key": params.key}
        with aws_call(f"presign the upload to s3://{params.bucket}/{params.key}"):
            url = ctx.aws("s3").generate_presigned_url(
                "put_object",
                Params={"Bucket": params.bucket, "Key": params.key},
                ExpiresIn=params.url_seconds,
            )
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "NodeDiagnostic",
            "metadata": {"name": params.node_name, "labels": {CASE_LABEL: ctx.case_id}},
            "spec": {"logCapture": {"destination": url}},
        }
        try:
            with k8s_write(f"create NodeDiagnostic {params.node_name}"):
                created = custom(ctx.k8s()).create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
        except NotFoundError as exc:
            raise StepFailedError(
                f"the cluster does not serve {GROUP}/{VERSION} NodeDiagnostic: the EKS node monitoring agent "
                "is not installed (built into Auto Mode; an add-on elsewhere)"
            ) from exc
        return {"uid": created["metadata"]["uid"], "key": params.key}

    def verify(
        self, ctx: ActionContext, params: NodeDiagnosticParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        """Done when the bundle is in the bucket (downloaded, hashed, in the case); a failed status fails."""
        data = self._bundle(ctx, params)
        if data is not None:
            name = params.key.rsplit("/", 1)[-1]
            item = record_evidence(
                ctx,
                f"node-diagnostic/{name}",
                data,
                source=f"s3://{params.bucket}/{params.key}",
                description=f"NodeDiagnostic log bundle of node {params.node_name}",
                media_type="application/gzip",
            )
            return VerifyOutcome(
                ok=True, detail=f"log bundle of {params.node_name} in the case", observed=item
            )
        reason, message = _outcome(_read(ctx, params.node_name))
        if reason in _DONE:
            detail = f"the agent reports {reason} but s3://{params.bucket}/{params.key} is missing"
        elif reason:
            detail = f"the agent reports {reason}: {message}"
        else:
            detail = "no bundle yet: the node monitoring agent has not uploaded (is it running on the node?)"
        return VerifyOutcome(ok=False, detail=detail, observed={"reason": reason})

    def _bundle(self, ctx: ActionContext, params: NodeDiagnosticParams) -> bytes | None:
        try:
            with aws_call(f"download s3://{params.bucket}/{params.key}"):
                body = ctx.aws("s3").get_object(Bucket=params.bucket, Key=params.key)["Body"]
                return bytes(body.read())
        except NotFoundError:
            return None

    def rollback(self, ctx: ActionContext, params: NodeDiagnosticParams, applied: dict[str, Any]) -> None:
        """Delete this case's NodeDiagnostic (the bundle stays: it is evidence)."""
        require_live(ctx, self.spec)
        existing = _read(ctx, params.node_name)
        if existing is None or existing["metadata"]["uid"] != applied.get("uid"):
            return
        try:
            with k8s_call(f"delete NodeDiagnostic {params.node_name}"):
                custom(ctx.k8s()).delete_cluster_custom_object(GROUP, VERSION, PLURAL, params.node_name)
        except NotFoundError:
            return
