"""The suppression filter for an authorised change: the finding's own imagePrefix and actor, the window.

The filter is checked two ways: against GuardDuty's CreateFilter input shape from botocore's service model
(field types: `updatedAt` bounds are epoch milliseconds), and by evaluating its criteria, with GuardDuty's
semantics written out here independently (a list field matches when any element does), against the bundled
example finding's wire JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from eksir.findings import read_findings_from_path
from eksir.triage.config import ChangeRecord
from eksir.triage.verdict import suppression_filter_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "finding-eventbridge.json"
PREFIX_FIELD = "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.imagePrefix"


def _example() -> tuple[Any, dict[str, Any]]:
    return read_findings_from_path(str(EXAMPLE))[0], json.loads(EXAMPLE.read_text())["detail"]


def _record(start: datetime, end: datetime) -> ChangeRecord:
    return ChangeRecord(
        id="CHG-7",
        principals=["kubernetes-admin"],
        namespaces=["default"],
        image_prefixes=["public.ecr.aws/docker/library/"],
        window_start=start,
        window_end=end,
    )


def _values(node: Any, path: list[str]) -> list[Any]:
    """Every value at the dotted path; lists fan out (GuardDuty matches if any element does)."""
    if isinstance(node, list):
        return [v for item in node for v in _values(item, path)]
    if not path:
        return [node]
    if not isinstance(node, dict) or path[0] not in node:
        return []
    return _values(node[path[0]], path[1:])


def _millis(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _matches(criterion: dict[str, dict[str, Any]], wire: dict[str, Any]) -> bool:
    for field, condition in criterion.items():
        if field == "updatedAt":
            at = _millis(wire["updatedAt"])
            if not condition["GreaterThanOrEqual"] <= at < condition["LessThan"]:
                return False
            continue
        assert set(condition) == {"Equals"}, condition
        found = _values(wire, field.split("."))
        if not any(v in condition["Equals"] for v in found):
            return False
    return True


def test_the_filter_for_the_bundled_example_matches_its_image_prefix_and_its_time() -> None:
    finding, wire = _example()
    updated = datetime.fromisoformat(wire["updatedAt"].replace("Z", "+00:00"))
    request = suppression_filter_for(
        finding, _record(updated - timedelta(hours=1), updated + timedelta(hours=1))
    )
    criterion = request["FindingCriteria"]["Criterion"]
    assert criterion[PREFIX_FIELD] == {"Equals": ["public.ecr.aws"]}, (
        "the finding's own value, not the record's"
    )
    assert criterion["resource.kubernetesDetails.kubernetesUserDetails.username"] == {
        "Equals": ["kubernetes-admin"]
    }
    assert criterion["updatedAt"] == {
        "GreaterThanOrEqual": _millis(wire["updatedAt"]) - 3_600_000,
        "LessThan": _millis(wire["updatedAt"]) + 3_600_000,
    }
    assert _matches(criterion, wire)


def test_a_repeat_after_the_change_window_is_not_archived() -> None:
    finding, wire = _example()
    updated = datetime.fromisoformat(wire["updatedAt"].replace("Z", "+00:00"))
    request = suppression_filter_for(
        finding, _record(updated - timedelta(hours=3), updated - timedelta(hours=1))
    )
    assert not _matches(request["FindingCriteria"]["Criterion"], wire)


def test_the_old_shape_a_record_prefix_in_equals_would_never_have_matched() -> None:
    """Why the builder changed: GuardDuty compares imagePrefix for equality, so a change record's path prefix
    in `Equals` archives nothing."""
    _, wire = _example()
    assert not _matches({PREFIX_FIELD: {"Equals": ["public.ecr.aws/docker/library/"]}}, wire)


def test_the_request_is_valid_for_guardduty_create_filter() -> None:
    finding, wire = _example()
    updated = datetime.fromisoformat(wire["updatedAt"].replace("Z", "+00:00"))
    request = suppression_filter_for(finding, _record(updated, updated + timedelta(days=1)))
    shape = botocore.session.get_session().get_service_model("guardduty").operation_model("CreateFilter")
    report = ParamValidator().validate(request, shape.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_a_finding_whose_images_have_no_prefix_gets_no_image_criterion() -> None:
    finding, _ = _example()
    workload = finding.workload
    bare = tuple(c.model_copy(update={"image_prefix": ""}) for c in workload.containers)
    finding = finding.model_copy(update={"workload": workload.model_copy(update={"containers": bare})})
    now = datetime.now(UTC)
    criterion = suppression_filter_for(finding, _record(now, now + timedelta(hours=1)))["FindingCriteria"]
    assert PREFIX_FIELD not in criterion["Criterion"]
