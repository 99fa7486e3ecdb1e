"""`guardduty.create_filter`: the suppression rule for an authorized change, created only on approval.

Why an action and not a triage side effect: a suppression filter (`Action=ARCHIVE`) silently archives
every future finding it matches, so it is a change to detection that needs an approver, a record, and a
rollback (delete the filter) like any other. The request comes verbatim from triage.json
(`verdict.suppression_filter`), scoped as narrowly as the finding allows; the filter is tagged with the
case id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field

from eksir.actions.base import (
    ACTION_CASE_LABEL,
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
from eksir.errors import BadInputError, NotFoundError, RefusedError

if TYPE_CHECKING:
    from types_boto3_guardduty.type_defs import FindingCriteriaTypeDef


class CreateFilterParams(ActionParams):
    detector_id: str = Field(pattern=r"^[A-Za-z0-9]{1,300}$")
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{3,64}$")
    description: str = Field(default="", max_length=512)
    action: Literal["ARCHIVE", "NOOP"] = "ARCHIVE"
    rank: int = Field(default=1, ge=1, le=100)
    finding_criteria: dict[str, Any]


def _get_filter(ctx: ActionContext, params: CreateFilterParams) -> dict[str, Any] | None:
    """The existing filter of that name, or None (moto and AWS answer 400 BadRequestException for unknown)."""
    try:
        with aws_call(f"read GuardDuty filter {params.name}"):
            response = ctx.aws("guardduty").get_filter(DetectorId=params.detector_id, FilterName=params.name)
    except (NotFoundError, BadInputError):  # BadRequestException (400) is how GuardDuty says "no such filter"
        return None
    return dict(response)


@register_action
class CreateSuppressionFilter(Action[CreateFilterParams]):
    spec = ActionSpec(
        id="guardduty.create_filter",
        phase=Phase.POST_INCIDENT,
        title="Create the GuardDuty suppression filter for an authorized change",
        iam_actions=(
            "guardduty:GetFilter",
            "guardduty:CreateFilter",
            "guardduty:DeleteFilter",
            "guardduty:TagResource",
        ),
        destructive=False,
        reversible=True,
        description="Auto-archives future findings matching the approved change; rollback deletes it.",
    )
    params_type = CreateFilterParams

    def check(self, ctx: ActionContext, params: CreateFilterParams) -> CheckOutcome:
        existing = _get_filter(ctx, params)
        if existing is None:
            return CheckOutcome(True, f"no filter {params.name} yet")
        same = (
            existing.get("FindingCriteria") == params.finding_criteria
            and existing.get("Action") == params.action
        )
        detail = (
            "filter exists with the same criteria"
            if same
            else "a filter of that name exists with OTHER criteria"
        )
        return CheckOutcome(same, detail, already_applied=same)

    def plan(self, ctx: ActionContext, params: CreateFilterParams) -> PlannedChange:
        criteria = params.finding_criteria.get("Criterion", {})
        return PlannedChange(
            f"create GuardDuty filter {params.name} ({params.action}) on detector {params.detector_id}",
            tuple(f"{field}: {condition}" for field, condition in criteria.items()),
            ("every future finding matching ALL criteria is archived automatically",),
        )

    def apply(self, ctx: ActionContext, params: CreateFilterParams) -> dict[str, Any]:
        if ctx.dry_run:
            raise RefusedError(f"{self.spec.id}: dry run, nothing changed")
        after = {"name": params.name, "action": params.action, "criteria": params.finding_criteria}
        if _get_filter(ctx, params) is not None:
            return {"detector_id": params.detector_id, "created": False, "before": None, "after": after}
        with aws_call(f"create GuardDuty filter {params.name}"):
            ctx.aws("guardduty").create_filter(
                DetectorId=params.detector_id,
                Name=params.name,
                Description=params.description,
                Action=params.action,
                Rank=params.rank,
                FindingCriteria=cast("FindingCriteriaTypeDef", params.finding_criteria),
                Tags={ACTION_CASE_LABEL: ctx.case_id},
            )
        return {"detector_id": params.detector_id, "created": True, "before": None, "after": after}

    def verify(
        self, ctx: ActionContext, params: CreateFilterParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        existing = _get_filter(ctx, params)
        if existing is None:
            return VerifyOutcome(False, f"filter {params.name} does not exist")
        observed = {"action": existing.get("Action"), "criteria": existing.get("FindingCriteria")}
        ok = observed["criteria"] == params.finding_criteria and observed["action"] == params.action
        return VerifyOutcome(ok, "filter in place" if ok else "filter differs from the request", observed)

    def rollback(self, ctx: ActionContext, params: CreateFilterParams, applied: dict[str, Any]) -> None:
        if ctx.dry_run:
            raise RefusedError(f"{self.spec.id}: dry run, nothing rolled back")
        if not applied.get("created"):
            return  # the filter existed before eksir; it is not ours to delete
        with aws_call(f"delete GuardDuty filter {params.name}"):
            ctx.aws("guardduty").delete_filter(DetectorId=params.detector_id, FilterName=params.name)


def params_from_triage(request: dict[str, Any], detector_id: str | None) -> CreateFilterParams:
    """CreateFilterParams from triage.json's `verdict.suppression_filter` (boto3 member names)."""
    detector = detector_id or str(request.get("DetectorId") or "")
    return CreateFilterParams(
        detector_id=detector,
        name=str(request.get("Name", "")),
        description=str(request.get("Description", "")),
        action=request.get("Action", "ARCHIVE"),
        rank=int(request.get("Rank", 1)),
        finding_criteria=dict(request.get("FindingCriteria") or {}),
    )
