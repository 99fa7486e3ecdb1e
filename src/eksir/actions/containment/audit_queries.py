"""`logs.audit_actor_changes`: what the actor changed in the cluster, from the EKS control-plane audit log.

Why Logs Insights and not a download: the audit log of a busy cluster is gigabytes a day; a query runs next to
the data and returns only the actor's writes. Two queries: every ClusterRoleBinding write by anyone (the usual
persistence move after a privileged container, and it may be made by a second identity), and every write or
delete by the actor's username since the lookback. The filters are data (`AuditFilter`), rendered into the
query text and also usable as a local predicate, so the same semantics can be checked against a real
kube-apiserver audit log (moto runs StartQuery but evaluates no filter).

Why the fields include `@message`: Insights discovers at most 100-200 fields per event and a pod spec has
more, so the whole event is kept and parsed here; a missing field in a summary never means a missing event.

Audit logging is off by default on EKS and nothing from before enablement is exported, so the step first reads
`logging.clusterLogging` and says plainly when `audit` is not on and how to turn it on. Query text and results
go into the case as evidence. The step changes nothing: rollback is a no-op.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, Field

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
from eksir.actions.containment.eks_access import CLUSTER_NAME_PATTERN
from eksir.actions.evidence.case_evidence import record_evidence
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

if TYPE_CHECKING:
    from types_boto3_logs.type_defs import GetQueryResultsResponseTypeDef

QUERY_LIMIT = 10000
POLL_INTERVAL_S = 2.0
AUDIT_STREAM = "kube-apiserver-audit"
_DONE = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
_FIELDS = (
    "@timestamp, @logStream, user.username, verb, objectRef.resource, objectRef.subresource, "
    "objectRef.namespace, objectRef.name, responseStatus.code, @message"
)


class AuditChangesParams(ActionParams):
    cluster_name: str = Field(pattern=CLUSTER_NAME_PATTERN)
    # Quotes, backslashes and line breaks never occur in EKS usernames; refusing them keeps the query literal.
    username: str = Field(min_length=1, max_length=1024, pattern=r'^[^"\\\r\n]+$')
    since: AwareDatetime
    wait_seconds: float = Field(default=120.0, ge=0, le=900)


@dataclass(frozen=True)
class AuditFilter:
    """One audit-log question as data: a conjunction of field == value / field in values."""

    name: str
    resource: str | None
    verbs: tuple[str, ...]
    username: str | None = None

    def insights_filter(self) -> str:
        terms = [f"@logStream like /{AUDIT_STREAM}/"]
        if self.resource is not None:
            terms.append(f'objectRef.resource = "{self.resource}"')
        if self.username is not None:
            terms.append(f'user.username = "{self.username}"')
        terms.append("verb in [" + ", ".join(f'"{v}"' for v in self.verbs) + "]")
        return " and ".join(terms)

    def query(self) -> str:
        """The Logs Insights query text (what is stored as evidence and shown in the report)."""
        lines = (f"fields {_FIELDS}", f"| filter {self.insights_filter()}", "| sort @timestamp asc")
        return "\n".join((*lines, f"| limit {QUERY_LIMIT}"))

    def matches(self, event: dict[str, Any]) -> bool:
        """The same filter applied to one audit event (audit.k8s.io/v1 JSON) instead of by Insights."""
        ref = event.get("objectRef") or {}
        user = (event.get("user") or {}).get("username")
        return (
            (self.resource is None or ref.get("resource") == self.resource)
            and (self.username is None or user == self.username)
            and event.get("verb") in self.verbs
        )


def audit_filters(username: str) -> tuple[AuditFilter, AuditFilter]:
    """The two questions the playbook asks: ClusterRoleBinding writes by anyone, all writes by the actor."""
    return (
        AuditFilter("clusterrolebinding-changes", "clusterrolebindings", ("create", "update", "patch")),
        AuditFilter("actor-changes", None, ("create", "update", "patch", "delete"), username=username),
    )


def log_group(cluster_name: str) -> str:
    return f"/aws/eks/{cluster_name}/cluster"


def enable_hint(cluster_name: str) -> str:
    return (
        f"enable it: aws eks update-cluster-config --name {cluster_name} --logging "
        '\'{"clusterLogging":[{"types":["audit","authenticator"],"enabled":true}]}\' '
        "(only events after enablement are exported)"
    )


def audit_enabled(ctx: ActionContext, cluster_name: str) -> bool:
    """Whether the cluster exports `audit` control-plane logs now; raises NotFoundError for no cluster."""
    with aws_call(f"describe EKS cluster {cluster_name}"):
        cluster = ctx.aws("eks").describe_cluster(name=cluster_name)["cluster"]
    setups = (cluster.get("logging") or {}).get("clusterLogging") or []
    return any(s.get("enabled") and "audit" in (s.get("types") or []) for s in setups)


def _group_exists(ctx: ActionContext, name: str) -> bool:
    with aws_call(f"look up log group {name}"):
        groups = ctx.aws("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return any(g.get("logGroupName") == name for g in groups)


def parse_rows(results: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """GetQueryResults rows ([{field, value}]) as dicts, with the audit event decoded from @message."""
    rows: list[dict[str, Any]] = []
    for raw in results:
        row: dict[str, Any] = {c["field"]: c.get("value") for c in raw if c.get("field") != "@ptr"}
        try:
            event = json.loads(str(row.get("@message") or ""))
        except ValueError:
            event = None
        if isinstance(event, dict):
            row["event"] = event
        rows.append(row)
    return rows


def within_filter(rows: list[dict[str, Any]], flt: AuditFilter | None) -> list[dict[str, Any]]:
    """The rows the query's own filter admits (a row whose event could not be decoded is kept: it cannot be
    judged). Logs Insights has applied the filter already, so on AWS nothing is dropped; an endpoint that
    runs the query without evaluating it (moto returns every event of the group) would otherwise fill each
    case with the whole audit log, megabytes per case in the fleet lab. How many were dropped is recorded."""
    if flt is None:
        return rows
    return [r for r in rows if not isinstance(r.get("event"), dict) or flt.matches(r["event"])]


def summarize(row: dict[str, Any]) -> str:
    """One line per change, from the decoded event (fields Insights may have dropped are read there)."""
    event = row.get("event") or {}
    ref = event.get("objectRef") or {}
    target = "/".join(p for p in (ref.get("namespace"), ref.get("resource"), ref.get("name")) if p)
    sub = f" ({ref['subresource']})" if ref.get("subresource") else ""
    code = (event.get("responseStatus") or {}).get("code", "?")
    when = event.get("requestReceivedTimestamp") or row.get("@timestamp")
    user = (event.get("user") or {}).get("username")
    return f"{when} {user} {event.get('verb')} {target}{sub} -> {code}"


@register_action
class AuditActorChanges(Action[AuditChangesParams]):
    spec = ActionSpec(
        id="logs.audit_actor_changes",
        phase=Phase.EVIDENCE,
        title="Query the EKS audit log for what the actor changed",
        iam_actions=(
            "eks:DescribeCluster",
            "logs:DescribeLogGroups",
            "logs:StartQuery",
            "logs:GetQueryResults",
        ),
        destructive=False,
        reversible=False,
        description="Read-only: Logs Insights over /aws/eks/<cluster>/cluster; results kept as evidence.",
    )
    params_type = AuditChangesParams

    def check(self, ctx: ActionContext, params: AuditChangesParams) -> CheckOutcome:
        try:
            enabled = audit_enabled(ctx, params.cluster_name)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        group = log_group(params.cluster_name)
        exists = _group_exists(ctx, group)
        if not enabled and not exists:
            return CheckOutcome(
                ok=False,
                detail=f"control-plane audit logging is NOT enabled on {params.cluster_name} and there is no "
                f"log group {group}: there is no audit log to query; {enable_hint(params.cluster_name)}",
            )
        warnings = () if enabled else (self._off_warning(params.cluster_name),)
        if enabled and not exists:
            return CheckOutcome(
                ok=False, detail=f"audit logging is on but log group {group} does not exist yet"
            )
        return CheckOutcome(ok=True, detail=f"audit log group {group} exists", warnings=warnings)

    @staticmethod
    def _off_warning(cluster_name: str) -> str:
        return (
            f"control-plane audit logging is NOT enabled on {cluster_name} now: only events from when it "
            f"was on are in the log group; {enable_hint(cluster_name)}"
        )

    def plan(self, ctx: ActionContext, params: AuditChangesParams) -> PlannedChange:
        return PlannedChange(
            summary=f"Run {len(audit_filters(params.username))} Logs Insights queries on "
            f"{log_group(params.cluster_name)} since {params.since.isoformat()} (read-only)",
            diff=tuple(f"query {f.name}: {f.query()}" for f in audit_filters(params.username)),
            blast_radius=("none: read-only (Logs Insights bills per GB scanned)",),
        )

    def apply(self, ctx: ActionContext, params: AuditChangesParams) -> dict[str, Any]:
        """Start both queries, wait (bounded) for them, store what completed; verify finishes the rest."""
        enabled = audit_enabled(ctx, params.cluster_name)
        start = int(params.since.timestamp())
        end = int(datetime.now(UTC).timestamp())
        queries = []
        for flt in audit_filters(params.username):
            with aws_call(f"start Logs Insights query {flt.name}"):
                query_id = ctx.aws("logs").start_query(
                    logGroupName=log_group(params.cluster_name),
                    startTime=start,
                    endTime=end,
                    queryString=flt.query(),
                    limit=QUERY_LIMIT,
                )["queryId"]
            queries.append({"name": flt.name, "query_id": query_id, "query": flt.query()})
        record = {
            "cluster_name": params.cluster_name,
            "log_group": log_group(params.cluster_name),
            "audit_logging_enabled": enabled,
            "start_time": start,
            "end_time": end,
            "queries": queries,
        }
        if not enabled:
            record["warning"] = self._off_warning(params.cluster_name)
        deadline = time.monotonic() + params.wait_seconds
        record["results"] = self._collect(ctx, record, deadline, params.username)
        return record

    def _collect(
        self, ctx: ActionContext, record: dict[str, Any], deadline: float, username: str
    ) -> list[dict[str, Any]]:
        """Poll each query until it is done or the deadline passes; store every finished one in the case."""
        filters = {flt.name: flt for flt in audit_filters(username)}
        results = []
        for query in record["queries"]:
            response = self._poll(ctx, str(query["query_id"]), deadline)
            status = str(response.get("status", "Unknown"))
            result: dict[str, Any] = {"name": query["name"], "query_id": query["query_id"], "status": status}
            if status == "Complete":
                returned = parse_rows(response.get("results", []))
                rows = within_filter(returned, filters.get(str(query["name"])))
                document = {
                    **{k: record[k] for k in ("cluster_name", "log_group", "start_time", "end_time")},
                    **query,
                    "status": status,
                    "statistics": response.get("statistics", {}),
                    "rows_returned": len(returned),
                    "rows_outside_filter_dropped": len(returned) - len(rows),
                    "summary": [summarize(r) for r in rows],
                    "rows": rows,
                }
                result["rows"] = len(rows)
                result["evidence"] = record_evidence(
                    ctx,
                    f"audit-query-{query['name']}.json",
                    json.dumps(document, sort_keys=True, indent=2, default=str).encode(),
                    source=f"logs:GetQueryResults {record['log_group']} query {query['query_id']}",
                    description=f"Logs Insights query {query['name']} on the EKS audit log, text and rows.",
                )
            results.append(result)
        return results

    @staticmethod
    def _poll(ctx: ActionContext, query_id: str, deadline: float) -> GetQueryResultsResponseTypeDef:
        while True:
            with aws_call(f"read Logs Insights query {query_id}"):
                response = ctx.aws("logs").get_query_results(queryId=query_id)
            if response.get("status") in _DONE or time.monotonic() >= deadline:
                return response
            time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))

    def verify(
        self, ctx: ActionContext, params: AuditChangesParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        """Read each query back; store any that finished after apply's wait; ok when all are stored."""
        results = {r["name"]: r for r in applied.get("results", [])}
        pending = {
            **applied,
            "queries": [
                q for q in applied.get("queries", []) if "evidence" not in results.get(q["name"], {})
            ],
        }
        for late in self._collect(ctx, pending, time.monotonic(), params.username):
            results[late["name"]] = late
        failed = [f"{n}: {r['status']}" for n, r in results.items() if r["status"] != "Complete"]
        counts = {n: r.get("rows", 0) for n, r in results.items()}
        detail = (
            "queries not complete: " + ", ".join(failed)
            if failed
            else "; ".join(f"{n}: {c} event(s)" for n, c in counts.items())
        )
        if not applied.get("audit_logging_enabled", True):
            detail += f" (audit logging is NOT enabled: {enable_hint(params.cluster_name)})"
        return VerifyOutcome(
            ok=bool(results) and not failed,
            detail=detail,
            observed={"results": list(results.values())},
        )

    def rollback(self, ctx: ActionContext, params: AuditChangesParams, applied: dict[str, Any]) -> None:
        """Nothing to undo: queries change nothing, and their results are evidence."""
