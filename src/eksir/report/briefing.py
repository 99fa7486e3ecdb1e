"""Page 1 of the report: what a CISO needs from the case, as facts computed once (pure, case record only).

Why a briefing apart from the executive summary: the reader of page 1 asks "what did they get, what did they
leave behind, did they blind us, is it stopped, what is still open, and who decided". Those answers are in the
hunt's classified calls (data access, identity persistence, logging tampered with), the recovery steps that
removed what the attacker created, the containment steps and the approvals. They are computed here so the
Markdown, HTML and JSON reports carry the same facts; the templates only render them.

Every string built here holds attacker-influenced text (object keys, user names, step details): it is
bounded here and escaped by each renderer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eksir.report.model import Briefing, ImpactItem, StepRow, utc_text
from eksir.report.status import status_tone
from eksir.report.timeline import parse_time

ITEM_LIMIT = 12
RISK_LIMIT = 15
"""Page 1 must stay one page: past this many open risks, the rest of the worklist is counted, not listed."""
TEXT_LIMIT = 240
DATA_CATEGORIES = ("data-access", "secret-access", "exfiltration")
NOT_DATA_RULES = frozenset({"ct.data-access.eks-token"})
"""`data-access` rules that read no one's data: DescribeCluster is how a caller gets a cluster token (it is
on the timeline and in the hunt, not in page 1's "data read")."""
PERSISTENCE_CATEGORIES = ("identity-persistence", "workload-persistence", "rbac-change", "token-request")
LOGGING_CATEGORIES = ("defense-evasion",)
LOGGING_ACTIONS = frozenset(
    {"DeleteTrail", "StopLogging", "UpdateTrail", "PutEventSelectors", "DeleteLogGroup", "DeleteFlowLogs"}
)
"""Calls that blind the responder whatever category a custom rule gave them (e.g. `deletion`)."""
_TARGET_KEYS = {
    "userName": "user",
    "roleName": "role",
    "groupName": "group",
    "policyArn": "policy",
    "trailName": "trail",
    "name": "name",
    "bucketName": "bucket",
    "key": "key",
}
CONTAINMENT_PHASES = ("containment",)
REMOVAL_PHASES = ("recovery", "eradication")


def bounded(text: Any, limit: int = TEXT_LIMIT) -> str:
    """One line of at most `limit` characters (hostile values can be megabytes long)."""
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _params(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("raw")
    params = raw.get("requestParameters") if isinstance(raw, dict) else None
    return params if isinstance(params, dict) else {}


def _arns(event: dict[str, Any]) -> list[str]:
    return [str(r["arn"]) for r in event.get("resources") or [] if isinstance(r, dict) and r.get("arn")]


def _target(event: dict[str, Any]) -> str:
    """The object the call touched: its resources' ARNs, else the request parameter that names it."""
    arns = _arns(event)
    objects = [a for a in arns if "/" in a.split(":::", 1)[-1]] or arns
    if objects:
        return bounded(", ".join(objects[:3]))
    params = _params(event)
    names = [f"{word} {params[k]}" for k, word in _TARGET_KEYS.items() if isinstance(params.get(k), str)]
    return bounded(", ".join(names[:2])) if names else "target not recorded"


def _short(value: str) -> str:
    """An ARN's resource name (`arn:...:user/x` -> `x`); other values as they are."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _identifiers(event: dict[str, Any]) -> set[str]:
    """The names of what the call touched, as a recovery step's parameters would carry them."""
    params = _params(event)
    names = {_short(a) for a in _arns(event)}
    names |= {_short(params[k]) for k in _TARGET_KEYS if isinstance(params.get(k), str)}
    return {n for n in names if n}


def _leaves(value: Any) -> set[str]:
    """Every string in a step's parameters (nested lists and objects included), ARNs also by name."""
    if isinstance(value, str):
        return {value, _short(value)}
    if isinstance(value, dict):
        return {leaf for v in value.values() for leaf in _leaves(v)}
    if isinstance(value, list):
        return {leaf for v in value for leaf in _leaves(v)}
    return set()


def _item(event: dict[str, Any]) -> ImpactItem:
    service = str(event.get("service") or "").removesuffix(".amazonaws.com")
    call = bounded(" ".join(p for p in (service, str(event.get("action") or "")) if p) or "call", 120)
    error = bounded(event.get("error_code") or "error", 60)
    outcome = f"attempted, failed ({error})" if event.get("failed") else "succeeded"
    return ImpactItem(
        utc_text(parse_time(event.get("event_time"))).replace("n/a", "time unknown"),
        call,
        _target(event),
        bounded(event.get("principal") or "unknown principal", 160),
        outcome,
    )


def _kind(event: dict[str, Any]) -> str | None:
    category = str(event.get("category") or "")
    if category in LOGGING_CATEGORIES or str(event.get("action") or "") in LOGGING_ACTIONS:
        return "logging_tampered"
    if category in DATA_CATEGORIES and str(event.get("rule_id") or "") not in NOT_DATA_RULES:
        return "data_read"
    if category in PERSISTENCE_CATEGORIES:
        return "persistence"
    return None


def _removal(names: set[str], steps: list[StepRow], plans: list[dict[str, Any]]) -> str:
    """What recovery did about a persistence item: the step whose parameters name it, and its status."""
    by_id = {s.step_id: s for s in steps if s.phase in REMOVAL_PHASES}
    for plan_step in plans:
        step = by_id.get(str(plan_step.get("id")))
        if step is not None and names & _leaves(plan_step.get("params")):
            verb = "removed" if status_tone(step.status) == "ok" else f"removal {step.status}"
            return f"{verb} by step {step.step_id}"
    return "not removed by eksir: open"


def _containment(steps: list[StepRow]) -> list[str]:
    rows = [s for s in steps if s.phase in CONTAINMENT_PHASES]
    if not rows:
        return ["No containment step recorded in the case."]
    in_effect = [s for s in rows if status_tone(s.status) == "ok"]
    lines = [f"{len(in_effect)} of {len(rows)} containment step(s) in effect and verified."]
    lines += [
        f"{s.step_id} ({s.action_id}): {_with_detail(s)}" for s in rows if status_tone(s.status) != "ok"
    ]
    return lines


def _with_detail(step: StepRow) -> str:
    """`status: detail`, without saying the status twice when the detail already starts with it."""
    detail = bounded(step.detail, 120).removeprefix(f"{step.status}:").strip()
    return f"{step.status}: {detail}" if detail else step.status


def _approvals(steps: list[StepRow]) -> list[str]:
    by_approver: dict[str, list[str]] = {}
    for step in steps:
        if step.approver:
            by_approver.setdefault(bounded(step.approver, 120), []).append(step.step_id)
    lines = []
    for approver, ids in by_approver.items():
        shown = ", ".join(bounded(i, 60) for i in ids[:8])
        shown += f" and {len(ids) - 8} more" if len(ids) > 8 else ""
        lines.append(f"{approver} approved {len(ids)} step(s): {shown}")
    declined = [s for s in steps if s.status == "skipped" and s.declined_by]
    lines += [
        f"{bounded(s.declined_by, 120)} declined {bounded(s.step_id, 60)}: not applied" for s in declined
    ]
    return lines or ["No approval recorded (no step needed one, or none ran)."]


def _risks(brief: Briefing, steps: list[StepRow], worklist: list[Any], proven: bool) -> list[str]:
    """What is still open, most serious first; the worklist's long tail is counted, not listed."""
    risks = [f"{s.step_id} ({s.action_id}) {s.status}" for s in steps if status_tone(s.status) == "bad"]
    risks += [f"{s.step_id}: not performed in the lab" for s in steps if s.status == "unavailable-in-lab"]
    risks += [
        f"{s.step_id} ({s.action_id}) declined at approval"
        for s in steps
        if s.status == "skipped" and s.declined_by
    ]
    risks += [
        f"Persistence still present: {p.call} {p.target}" for p in brief.persistence if "open" in p.outcome
    ]
    if brief.logging_tampered:
        risks.append("Logging was tampered with: activity after that point may be missing from the hunt.")
    if not brief.hunted:
        risks.append("No hunt in the case: what the attacker did beyond the finding is unknown.")
    if not proven:
        risks.append("Prevention is not yet proven in the cluster.")
    items = [
        f"Worklist: {bounded(item.get('resource'), 120)}: {bounded(item.get('todo'), 160)}"
        for item in worklist
        if isinstance(item, dict)
    ]
    room = max(RISK_LIMIT - len(risks), 1)
    if len(items) > room:
        items = [
            *items[: room - 1],
            f"Worklist: {len(items) - room + 1} more item(s) in recovery/worklist.json",
        ]
    return risks + items


def build_briefing(
    hunt: dict[str, Any] | None, steps: list[StepRow], recovery: dict[str, Any], proven: bool
) -> Briefing:
    """Page-1 facts from the hunt, the steps, the recovery plan and worklist (`recovery` holds both)."""
    brief = Briefing(hunted=hunt is not None)
    plans = [s for s in (recovery.get("plan") or {}).get("steps") or [] if isinstance(s, dict)]
    for event in (hunt or {}).get("events") or []:
        kind = _kind(event) if isinstance(event, dict) else None
        if kind is None:
            continue
        items: list[ImpactItem] = getattr(brief, kind)
        if len(items) >= ITEM_LIMIT:
            brief.more[kind] = brief.more.get(kind, 0) + 1
            continue
        item = _item(event)
        if kind == "persistence" and not event.get("failed"):
            removal = _removal(_identifiers(event), steps, plans)
            item = ImpactItem(item.at, item.call, item.target, item.principal, removal)
        items.append(item)
    brief.containment = _containment(steps)
    brief.approvals = _approvals(steps)
    brief.open_risks = _risks(brief, steps, list(recovery.get("worklist") or []), proven)
    return brief


def exceptions_granted(events: Iterable[Any]) -> list[str]:
    """Who overrode a guard, for page 1's approvals: an outage the check predicted, accepted with a reason
    (`--override-outage`), and node isolation approved without volatile evidence after a failed capture."""
    lines = []
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        step = bounded(data.get("step_id"), 60)
        if event.type == "step.outage-overridden":
            who, why = bounded(data.get("approver"), 120), bounded(data.get("reason"), 200)
            lines.append(f"{who} accepted the outage the check predicted for {step}: {why}")
        elif event.type == "step.fallback" and (data.get("approval") or {}).get("approved"):
            who = bounded(data["approval"].get("approver"), 120)
            what = bounded(data.get("approval_id"), 90)
            lines.append(f"{who} approved {step} without its volatile evidence ({what})")
    return lines
