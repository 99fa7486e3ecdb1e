"""Close the finding where it lives: Security Hub workflow RESOLVED with a note, GuardDuty archive and
feedback.

Why three separate steps: GuardDuty and Security Hub do not sync these states (archiving in GuardDuty does
not resolve the Security Hub copy, and no source shows workflow changes flowing back), so each is set on
its own and verified on its own. Archive needs the GuardDuty administrator account (members cannot
archive); the error says so. Security Hub `BatchUpdateFindings` reports per-finding failures in
`UnprocessedFindings` with HTTP 200, so that list is checked, not just the status code. Feedback cannot be
withdrawn, so it is not reversible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

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
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import CaseInvalidError, RefusedError, StepFailedError

if TYPE_CHECKING:
    from types_boto3_securityhub.type_defs import AwsSecurityFindingIdentifierTypeDef

WorkflowStatus = Literal["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"]
WORKFLOW_STATUSES: frozenset[str] = frozenset({"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"})

FINDING_ARN = r"^arn:aws[a-z-]*:guardduty:[a-z0-9-]+:\d{12}:detector/[A-Za-z0-9]+/finding/[A-Za-z0-9]+$"


def _live(ctx: ActionContext, spec: ActionSpec) -> None:
    if ctx.dry_run:
        raise RefusedError(f"{spec.id}: dry run, nothing changed")


class ResolveParams(ActionParams):
    finding_arn: str = Field(pattern=FINDING_ARN)
    note: str = Field(min_length=1, max_length=512)
    updated_by: str = Field(min_length=1, max_length=512)

    @property
    def identifier(self) -> AwsSecurityFindingIdentifierTypeDef:
        region = self.finding_arn.split(":")[3]
        partition = self.finding_arn.split(":")[1]
        return {
            "Id": self.finding_arn,
            "ProductArn": f"arn:{partition}:securityhub:{region}::product/aws/guardduty",
        }


def _workflow(ctx: ActionContext, params: ResolveParams) -> str | None:
    with aws_call("read the Security Hub finding"):
        found = ctx.aws("securityhub").get_findings(
            Filters={"Id": [{"Value": params.finding_arn, "Comparison": "EQUALS"}]}, MaxResults=1
        )["Findings"]
    return str(found[0].get("Workflow", {}).get("Status", "NEW")) if found else None


def _batch_update(ctx: ActionContext, params: ResolveParams, status: str, text: str) -> None:
    if status not in WORKFLOW_STATUSES:
        raise CaseInvalidError(
            f"recorded Security Hub workflow status {status!r} is not one Security Hub uses"
        )
    with aws_call(f"set the Security Hub workflow status to {status}"):
        response = ctx.aws("securityhub").batch_update_findings(
            FindingIdentifiers=[params.identifier],
            Workflow={"Status": cast("WorkflowStatus", status)},
            Note={"Text": text, "UpdatedBy": params.updated_by},
        )
    failed = response.get("UnprocessedFindings") or []
    if failed:
        first = failed[0]
        raise StepFailedError(
            f"Security Hub did not update the finding: {first.get('ErrorCode')} {first.get('ErrorMessage')}"
        )


@register_action
class ResolveSecurityHubFinding(Action[ResolveParams]):
    spec = ActionSpec(
        id="securityhub.resolve_finding",
        phase=Phase.POST_INCIDENT,
        title="Set the Security Hub finding's workflow status to RESOLVED with a note",
        iam_actions=("securityhub:GetFindings", "securityhub:BatchUpdateFindings"),
        reversible=True,
    )
    params_type = ResolveParams

    def check(self, ctx: ActionContext, params: ResolveParams) -> CheckOutcome:
        status = _workflow(ctx, params)
        if status is None:
            return CheckOutcome(
                False, "the finding is not in Security Hub (integration off, or another region)"
            )
        return CheckOutcome(True, f"workflow status {status}", already_applied=status == "RESOLVED")

    def plan(self, ctx: ActionContext, params: ResolveParams) -> PlannedChange:
        return PlannedChange(
            f"Security Hub workflow -> RESOLVED for {params.finding_arn}", (f"note: {params.note}",)
        )

    def apply(self, ctx: ActionContext, params: ResolveParams) -> dict[str, Any]:
        _live(ctx, self.spec)
        before = _workflow(ctx, params)
        if before != "RESOLVED":
            _batch_update(ctx, params, "RESOLVED", params.note)
        return {"before": {"workflow": before}, "after": {"workflow": "RESOLVED", "note": params.note}}

    def verify(self, ctx: ActionContext, params: ResolveParams, applied: dict[str, Any]) -> VerifyOutcome:
        status = _workflow(ctx, params)
        return VerifyOutcome(status == "RESOLVED", f"workflow status {status}", {"workflow": status})

    def rollback(self, ctx: ActionContext, params: ResolveParams, applied: dict[str, Any]) -> None:
        _live(ctx, self.spec)
        previous = (applied.get("before") or {}).get("workflow") or "NEW"
        if previous != "RESOLVED":
            _batch_update(ctx, params, previous, f"eksir rollback: reopened ({params.note})"[:512])


class GuardDutyFindingParams(ActionParams):
    detector_id: str = Field(pattern=r"^[A-Za-z0-9]{1,300}$")
    finding_id: str = Field(pattern=r"^[A-Za-z0-9]{1,300}$")


def _archived(ctx: ActionContext, params: GuardDutyFindingParams) -> bool | None:
    with aws_call(f"read GuardDuty finding {params.finding_id}"):
        found = ctx.aws("guardduty").get_findings(
            DetectorId=params.detector_id, FindingIds=[params.finding_id]
        )
    findings = found.get("Findings") or []
    return bool(findings[0].get("Service", {}).get("Archived")) if findings else None


@register_action
class ArchiveGuardDutyFinding(Action[GuardDutyFindingParams]):
    spec = ActionSpec(
        id="guardduty.archive_finding",
        phase=Phase.POST_INCIDENT,
        title="Archive the GuardDuty finding",
        iam_actions=("guardduty:GetFindings", "guardduty:ArchiveFindings", "guardduty:UnarchiveFindings"),
        reversible=True,
        description="Needs the GuardDuty administrator account; members cannot archive.",
    )
    params_type = GuardDutyFindingParams

    def check(self, ctx: ActionContext, params: GuardDutyFindingParams) -> CheckOutcome:
        archived = _archived(ctx, params)
        if archived is None:
            return CheckOutcome(
                False, f"finding {params.finding_id} not found on detector {params.detector_id}"
            )
        return CheckOutcome(True, "archived" if archived else "active", already_applied=archived)

    def plan(self, ctx: ActionContext, params: GuardDutyFindingParams) -> PlannedChange:
        return PlannedChange(
            f"archive GuardDuty finding {params.finding_id}",
            warnings=("archiving does not update the Security Hub copy",),
        )

    def apply(self, ctx: ActionContext, params: GuardDutyFindingParams) -> dict[str, Any]:
        _live(ctx, self.spec)
        before = _archived(ctx, params)
        if not before:
            with aws_call("archive the GuardDuty finding (administrator account only)"):
                ctx.aws("guardduty").archive_findings(
                    DetectorId=params.detector_id, FindingIds=[params.finding_id]
                )
        return {"before": {"archived": before}, "after": {"archived": True}}

    def verify(
        self, ctx: ActionContext, params: GuardDutyFindingParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        archived = _archived(ctx, params)
        return VerifyOutcome(archived is True, f"archived={archived}", {"archived": archived})

    def rollback(self, ctx: ActionContext, params: GuardDutyFindingParams, applied: dict[str, Any]) -> None:
        _live(ctx, self.spec)
        if not (applied.get("before") or {}).get("archived"):
            with aws_call("unarchive the GuardDuty finding"):
                ctx.aws("guardduty").unarchive_findings(
                    DetectorId=params.detector_id, FindingIds=[params.finding_id]
                )


class FeedbackParams(GuardDutyFindingParams):
    feedback: Literal["USEFUL", "NOT_USEFUL"] = "USEFUL"
    comments: str = Field(default="", max_length=1024)


@register_action
class GuardDutyFindingFeedback(Action[FeedbackParams]):
    spec = ActionSpec(
        id="guardduty.finding_feedback",
        phase=Phase.POST_INCIDENT,
        title="Send feedback on the GuardDuty finding",
        iam_actions=("guardduty:UpdateFindingsFeedback",),
        reversible=False,
        description="Tells GuardDuty whether the finding was useful; cannot be read back or withdrawn.",
    )
    params_type = FeedbackParams

    def check(self, ctx: ActionContext, params: FeedbackParams) -> CheckOutcome:
        return CheckOutcome(True, "feedback can always be sent")

    def plan(self, ctx: ActionContext, params: FeedbackParams) -> PlannedChange:
        return PlannedChange(
            f"send feedback {params.feedback} on finding {params.finding_id}",
            (f"comments: {params.comments}",),
            warnings=("feedback cannot be withdrawn",),
        )

    def apply(self, ctx: ActionContext, params: FeedbackParams) -> dict[str, Any]:
        _live(ctx, self.spec)
        with aws_call("send GuardDuty finding feedback"):
            ctx.aws("guardduty").update_findings_feedback(
                DetectorId=params.detector_id,
                FindingIds=[params.finding_id],
                Feedback=params.feedback,
                Comments=params.comments,
            )
        return {"before": None, "after": {"feedback": params.feedback, "comments": params.comments}}

    def verify(self, ctx: ActionContext, params: FeedbackParams, applied: dict[str, Any]) -> VerifyOutcome:
        return VerifyOutcome(
            True, "accepted by GuardDuty (the API offers no read-back)", applied.get("after") or {}
        )

    def rollback(self, ctx: ActionContext, params: FeedbackParams, applied: dict[str, Any]) -> None:
        raise RefusedError("GuardDuty feedback cannot be withdrawn")
