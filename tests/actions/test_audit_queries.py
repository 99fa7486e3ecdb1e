"""logs.audit_actor_changes: query text exactly, parsing against moto's Logs Insights (which runs the query
but evaluates no filter), and the filter semantics against the real audit log of the lab's kube-apiserver."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from eksir.actions.base import ActionContext
from eksir.actions.containment.audit_queries import (
    AuditActorChanges,
    AuditChangesParams,
    audit_filters,
    parse_rows,
)
from eksir.actions.evidence.case_evidence import CASE_EXTRA
from eksir.actions.registry import get_action
from eksir.lab.controlplane import ControlPlane
from eksir.lab.k8s_seed import read_audit_log
from tests.actions.case_helpers import empty_case
from tests.actions.conftest import boto_client

CLUSTER = "prod-eks"
ACTOR = "arn:aws:sts::111122223333:assumed-role/ci-deployer/attacker-session"
GROUP = f"/aws/eks/{CLUSTER}/cluster"

CRB_QUERY = (
    "fields @timestamp, @logStream, user.username, verb, objectRef.resource, objectRef.subresource, "
    "objectRef.namespace, objectRef.name, responseStatus.code, @message\n"
    '| filter @logStream like /kube-apiserver-audit/ and objectRef.resource = "clusterrolebindings" '
    'and verb in ["create", "update", "patch"]\n'
    "| sort @timestamp asc\n"
    "| limit 10000"
)
ACTOR_QUERY = (
    "fields @timestamp, @logStream, user.username, verb, objectRef.resource, objectRef.subresource, "
    "objectRef.namespace, objectRef.name, responseStatus.code, @message\n"
    f'| filter @logStream like /kube-apiserver-audit/ and user.username = "{ACTOR}" '
    'and verb in ["create", "update", "patch", "delete"]\n'
    "| sort @timestamp asc\n"
    "| limit 10000"
)


def _event(
    verb: str, resource: str, name: str, namespace: str | None = None, user: str = ACTOR
) -> dict[str, Any]:
    ref = {"resource": resource, "name": name, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/{resource}/{name}",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": datetime.now(UTC).isoformat(),
    }


def test_the_queries_are_exactly_the_playbooks() -> None:
    crb, actor = audit_filters(ACTOR)
    assert crb.query() == CRB_QUERY
    assert actor.query() == ACTOR_QUERY


def test_a_username_with_a_quote_is_refused_so_the_query_stays_literal() -> None:
    with pytest.raises(ValueError, match="username"):
        AuditChangesParams(cluster_name=CLUSTER, username='x" or verb = "get', since=datetime.now(UTC))


@pytest.fixture
def cluster(moto: Any) -> list[dict[str, Any]]:
    """An EKS cluster exporting audit logs, and a log group holding audit-shaped events."""
    boto_client(moto, "eks").create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::111122223333:role/eks",
        resourcesVpcConfig={"subnetIds": []},
        logging={"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]},
    )
    events = [
        _event("create", "clusterrolebindings", "backdoor-admin"),
        _event("create", "pods", "priv-shell", "default"),
        _event("delete", "configmaps", "app-config", "default"),
    ]
    _seed(moto, events)
    return events


def _seed(moto: Any, events: list[dict[str, Any]]) -> None:
    logs = boto_client(moto, "logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="kube-apiserver-audit-0a1b2c3d")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="kube-apiserver-audit-0a1b2c3d",
        logEvents=[{"timestamp": now - 1000 + i, "message": json.dumps(e)} for i, e in enumerate(events)],
    )


def _params(**extra: Any) -> AuditChangesParams:
    return AuditChangesParams(
        cluster_name=CLUSTER, username=ACTOR, since=datetime.now(UTC) - timedelta(hours=24), **extra
    )


def test_results_are_parsed_and_stored_in_the_case_with_their_query_text(
    aws_ctx: ActionContext, cluster: list[dict[str, Any]], tmp_path: Path
) -> None:
    case = empty_case(tmp_path / "case")
    aws_ctx.extras[CASE_EXTRA] = case
    action = AuditActorChanges()
    assert action.check(aws_ctx, _params()).ok
    applied = action.apply(aws_ctx, _params(wait_seconds=5))
    assert [r["status"] for r in applied["results"]] == ["Complete", "Complete"]
    items = case.load().evidence
    assert [i.name for i in items] == [
        "audit-query-clusterrolebinding-changes.json",
        "audit-query-actor-changes.json",
    ]
    stored = json.loads((case.path / items[1].path).read_bytes())
    assert stored["query"] == ACTOR_QUERY
    assert stored["log_group"] == GROUP
    # The actor's writes: every seeded event, decoded from @message.
    assert [r["event"]["objectRef"]["name"] for r in stored["rows"]] == [
        "backdoor-admin",
        "priv-shell",
        "app-config",
    ]
    # moto does not evaluate the query's filter: it returns every event, and the step keeps only those the
    # filter admits (on AWS, Insights has dropped them already), counting what it dropped.
    bindings = json.loads((case.path / items[0].path).read_bytes())
    assert [r["event"]["objectRef"]["name"] for r in bindings["rows"]] == ["backdoor-admin"]
    assert (bindings["rows_returned"], bindings["rows_outside_filter_dropped"]) == (3, 2)
    assert any(" create clusterrolebindings/backdoor-admin -> 201" in s for s in stored["summary"])
    assert any(" delete default/configmaps/app-config -> 201" in s for s in stored["summary"])
    outcome = action.verify(aws_ctx, _params(), applied)
    assert outcome.ok
    assert len(case.load().evidence) == 2  # verify does not enter the same results twice


def test_parse_rows_keeps_rows_whose_message_is_not_json() -> None:
    rows = parse_rows(
        [
            [
                {"field": "@ptr", "value": "x"},
                {"field": "@message", "value": "truncated {"},
                {"field": "verb", "value": "create"},
            ]
        ]
    )
    assert rows == [{"@message": "truncated {", "verb": "create"}]


def test_audit_logging_off_without_a_log_group_says_so_and_how_to_enable(
    aws_ctx: ActionContext, moto: Any
) -> None:
    boto_client(moto, "eks").create_cluster(
        name=CLUSTER, roleArn="arn:aws:iam::111122223333:role/eks", resourcesVpcConfig={"subnetIds": []}
    )
    outcome = AuditActorChanges().check(aws_ctx, _params())
    assert not outcome.ok
    assert "audit logging is NOT enabled" in outcome.detail
    assert f"aws eks update-cluster-config --name {CLUSTER}" in outcome.detail


def test_audit_logging_off_but_old_logs_kept_still_queries_and_warns(
    aws_ctx: ActionContext, moto: Any
) -> None:
    boto_client(moto, "eks").create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::111122223333:role/eks",
        resourcesVpcConfig={"subnetIds": []},
        logging={"clusterLogging": [{"types": ["audit"], "enabled": False}]},
    )
    _seed(moto, [_event("patch", "clusterrolebindings", "cluster-admin-2")])
    check = AuditActorChanges().check(aws_ctx, _params())
    assert check.ok
    assert any("NOT enabled" in w for w in check.warnings)
    applied = AuditActorChanges().apply(aws_ctx, _params(wait_seconds=5))
    assert applied["audit_logging_enabled"] is False
    assert "NOT enabled" in AuditActorChanges().verify(aws_ctx, _params(), applied).detail


def test_the_action_is_registered_read_only_with_its_iam_actions() -> None:
    action = get_action("logs.audit_actor_changes")
    assert set(action.spec.iam_actions) == {
        "eks:DescribeCluster",
        "logs:DescribeLogGroups",
        "logs:StartQuery",
        "logs:GetQueryResults",
    }
    assert not action.spec.destructive


def _events_about(audit_log: Path, names: set[str], want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        events = [e for e in read_audit_log(audit_log) if (e.get("objectRef") or {}).get("name") in names]
        if len(events) >= want or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


@pytest.mark.lab
def test_the_filters_select_the_right_events_of_a_real_kube_apiserver_audit_log(
    control_plane: ControlPlane, k8s_admin: Any, k8s_namespace: str
) -> None:
    """Same fields, values and verbs as the Insights filter, applied to what kube-apiserver really writes."""
    crb_name = f"eksir-test-{uuid.uuid4().hex[:8]}"
    rbac = k8s.RbacAuthorizationV1Api(k8s_admin)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": crb_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    rbac.patch_cluster_role_binding(crb_name, {"metadata": {"labels": {"x": "y"}}})
    rbac.read_cluster_role_binding(crb_name)
    core = k8s.CoreV1Api(k8s_admin)
    cm_name = f"cm-{uuid.uuid4().hex[:8]}"
    core.create_namespaced_config_map(k8s_namespace, {"metadata": {"name": cm_name}, "data": {"a": "b"}})
    core.delete_namespaced_config_map(cm_name, k8s_namespace)
    events = _events_about(control_plane.audit_log, {crb_name, cm_name}, want=5)
    admin = next(e["user"]["username"] for e in events if e["verb"] == "create")
    crb, actor = audit_filters(admin)
    crb_hits = [(e["verb"], e["objectRef"]["name"]) for e in events if crb.matches(e)]
    actor_hits = [(e["verb"], e["objectRef"]["name"]) for e in events if actor.matches(e)]
    assert crb_hits == [("create", crb_name), ("patch", crb_name)]
    assert actor_hits == [("create", crb_name), ("patch", crb_name), ("create", cm_name), ("delete", cm_name)]
    assert ("get", crb_name) in [(e["verb"], e["objectRef"]["name"]) for e in events]  # reads are excluded
    _, someone_else = audit_filters("mallory")
    assert not [e for e in events if someone_else.matches(e)]


def test_a_query_still_running_after_the_wait_is_stored_by_verify(
    aws_ctx: ActionContext, cluster: list[dict[str, Any]], tmp_path: Path
) -> None:
    applied = AuditActorChanges().apply(aws_ctx, _params(wait_seconds=0))
    # As apply records it when the wait ran out before Insights finished the actor query:
    applied["results"] = [applied["results"][0], {"name": "actor-changes", "status": "Running"}]
    case = empty_case(tmp_path / "case")
    aws_ctx.extras[CASE_EXTRA] = case
    outcome = AuditActorChanges().verify(aws_ctx, _params(), applied)
    assert outcome.ok
    assert [i.name for i in case.load().evidence] == ["audit-query-actor-changes.json"]
    assert {r["name"]: r["status"] for r in outcome.observed["results"]} == {
        "clusterrolebinding-changes": "Complete",
        "actor-changes": "Complete",
    }
