"""k8s.cordon_node and k8s.label_node against the real kube-apiserver."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from eksir.actions.base import Action, ActionContext
from eksir.actions.containment.k8s_node import (
    CORDON,
    INVESTIGATION,
    LABELS_BEFORE,
    CordonNode,
    LabelNode,
    NodeParams,
    read_node,
)
from eksir.actions.registry import get_action
from eksir.errors import BadInputError, NotFoundError, RefusedError
from eksir.lab.controlplane import ControlPlane
from tests.actions.conftest import CASE_ID, make_ctx

pytestmark = pytest.mark.lab
MARKER = "eksir.io/investigation"
OWN = f"case.eksir.io/{CASE_ID}"


@contextmanager
def restricted_client(control_plane: ControlPlane, admin: ApiClient, *actions: Action[Any]) -> Iterator[Any]:
    """A client for a user bound to exactly the ClusterRole derived from the actions' declared RBAC rules.

    This is what `eksir permissions` generates: if a declaration is incomplete, the action fails here.
    """
    name = f"eksir-test-{uuid.uuid4().hex[:8]}"
    rules = [
        {"apiGroups": list(r.api_groups), "resources": list(r.resources), "verbs": list(r.verbs)}
        for action in actions
        for r in action.spec.rbac
    ]
    rbac = RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        }
    )
    try:
        yield control_plane.identity_api_client(name)
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


@pytest.fixture
def ctx(k8s_admin: ApiClient) -> ActionContext:
    return make_ctx(k8s=lambda: k8s_admin)


@pytest.fixture
def node(k8s_admin: ApiClient) -> Iterator[str]:
    name = f"ip-10-0-{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}.ec2.internal"
    body = {"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "team": "blue"}}}
    CoreV1Api(k8s_admin).create_node(body)
    yield name
    try:
        CoreV1Api(k8s_admin).delete_node(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _node(api: ApiClient, name: str) -> dict[str, Any]:
    return dict(api.sanitize_for_serialization(CoreV1Api(api).read_node(name)))


def _without_version(node: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in node["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**node, "metadata": meta}


def test_cordon_makes_the_node_unschedulable_and_rollback_restores_it_exactly(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    before = _node(k8s_admin, node)
    params = NodeParams(node_name=node)
    applied = CordonNode().apply(ctx, params)
    assert _node(k8s_admin, node)["spec"]["unschedulable"] is True
    assert applied["was_unschedulable"] is False
    assert CordonNode().verify(ctx, params, applied).ok
    assert CordonNode().check(ctx, params).already_applied
    CordonNode().rollback(ctx, params, applied)
    after = _node(k8s_admin, node)
    assert not after["spec"].get("unschedulable")
    assert _without_version(after) == _without_version(before)
    assert not CordonNode().verify(ctx, params, applied).ok


def test_a_second_cordon_is_a_no_op_that_returns_the_same_record(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    params = NodeParams(node_name=node)
    first = CordonNode().apply(ctx, params)
    version = _node(k8s_admin, node)["metadata"]["resourceVersion"]
    second = CordonNode().apply(ctx, params)
    assert second == first
    assert _node(k8s_admin, node)["metadata"]["resourceVersion"] == version


def test_rollback_leaves_a_node_cordoned_before_eksir_cordoned(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    CoreV1Api(k8s_admin).patch_node(node, {"spec": {"unschedulable": True}})
    params = NodeParams(node_name=node)
    applied = CordonNode().apply(ctx, params)
    assert applied["was_unschedulable"] is True
    CordonNode().rollback(ctx, params, applied)
    assert _node(k8s_admin, node)["spec"]["unschedulable"] is True


def test_labelling_adds_the_marker_and_the_case_label_keeps_the_others_and_rollback_removes_them(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    before = _node(k8s_admin, node)
    params = NodeParams(node_name=node)
    applied = LabelNode().apply(ctx, params)
    labels = _node(k8s_admin, node)["metadata"]["labels"]
    assert labels[MARKER] == "true"
    assert labels[OWN] == "investigating"
    assert "eksir.io/case-id" not in labels, "one value per node: no case may own it"
    assert labels["team"] == "blue"
    assert LabelNode().verify(ctx, params, applied).ok
    assert LabelNode().check(ctx, params).already_applied
    version = _node(k8s_admin, node)["metadata"]["resourceVersion"]
    assert LabelNode().apply(ctx, params) == applied
    assert _node(k8s_admin, node)["metadata"]["resourceVersion"] == version, "a second apply changes nothing"
    LabelNode().rollback(ctx, params, applied)
    assert _without_version(_node(k8s_admin, node)) == _without_version(before)


def test_label_rollback_restores_a_prior_investigation_value(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    CoreV1Api(k8s_admin).patch_node(node, {"metadata": {"labels": {MARKER: "case-older"}}})
    params = NodeParams(node_name=node)
    assert LabelNode().check(ctx, params).warnings
    applied = LabelNode().apply(ctx, params)
    assert applied["labels_before"] == {MARKER: "case-older"}
    assert _node(k8s_admin, node)["metadata"]["labels"][MARKER] == "true"
    LabelNode().rollback(ctx, params, applied)
    labels = _node(k8s_admin, node)["metadata"]["labels"]
    assert labels[MARKER] == "case-older"
    assert OWN not in labels


def test_two_cases_on_one_node_both_verify_and_each_rollback_undoes_only_its_own_label(
    k8s_admin: ApiClient, node: str
) -> None:
    CoreV1Api(k8s_admin).patch_node(node, {"metadata": {"labels": {MARKER: "set-by-a-human"}}})
    before = _node(k8s_admin, node)
    first, second = (make_ctx(k8s=lambda: k8s_admin, case_id=c) for c in ("eksir-20261207-aaaa", "case-b"))
    params = NodeParams(node_name=node)
    applied_first = LabelNode().apply(first, params)
    applied_second = LabelNode().apply(second, params)
    assert LabelNode().check(second, params).warnings, "check names the other case on the node"
    assert LabelNode().verify(first, params, applied_first).ok
    assert LabelNode().verify(second, params, applied_second).ok
    assert applied_first["labels_before"] == applied_second["labels_before"] == {MARKER: "set-by-a-human"}
    LabelNode().rollback(first, params, applied_first)
    labels = _node(k8s_admin, node)["metadata"]["labels"]
    assert labels[MARKER] == "true", "the shared marker stays while a case still holds the node"
    assert "case.eksir.io/eksir-20261207-aaaa" not in labels
    assert labels["case.eksir.io/case-b"] == "investigating"
    assert LabelNode().verify(second, params, applied_second).ok
    assert not LabelNode().verify(first, params, applied_first).ok
    LabelNode().rollback(first, params, applied_first)  # a repeated rollback changes nothing
    assert LabelNode().verify(second, params, applied_second).ok
    LabelNode().rollback(second, params, applied_second)
    assert _without_version(_node(k8s_admin, node)) == _without_version(before)


def test_a_rollback_computed_from_a_stale_read_is_refused_and_recomputed(
    k8s_admin: ApiClient, node: str
) -> None:
    """The race the resourceVersion guard closes: case A reads the node as the only holder, case B labels it,
    then A's patch (which would drop the marker B now needs) arrives: the API server refuses it (409)."""
    first, second = (make_ctx(k8s=lambda: k8s_admin, case_id=c) for c in ("case-a", "case-b"))
    params = NodeParams(node_name=node)
    applied_first = LabelNode().apply(first, params)
    stale = read_node(first, node)
    applied_second = LabelNode().apply(second, params)
    ops = INVESTIGATION.release_ops(stale, "case-a")
    assert {"op": "remove", "path": "/metadata/labels/eksir.io~1investigation"} in ops
    with pytest.raises(ApiException) as refused:
        CoreV1Api(k8s_admin).patch_node(node, ops)
    assert refused.value.status == 409
    assert LabelNode().verify(second, params, applied_second).ok
    LabelNode().rollback(first, params, applied_first)
    assert LabelNode().verify(second, params, applied_second).ok


def test_concurrent_apply_and_rollback_of_two_cases_never_lose_the_other_cases_labels(
    k8s_admin: ApiClient, node: str
) -> None:
    """Case A rolls back while case B labels the node, both at once, again and again: B always verifies."""
    first, second = (make_ctx(k8s=lambda: k8s_admin, case_id=c) for c in ("case-a", "case-b"))
    params = NodeParams(node_name=node)
    for _ in range(8):
        applied_first = LabelNode().apply(first, params)
        with ThreadPoolExecutor(2) as pool:
            going = pool.submit(LabelNode().rollback, first, params, applied_first)
            coming = pool.submit(LabelNode().apply, second, params)
            going.result()
            applied_second = coming.result()
        assert LabelNode().verify(second, params, applied_second).ok
        assert not LabelNode().verify(first, params, applied_first).ok
        LabelNode().rollback(second, params, applied_second)
        labels = _node(k8s_admin, node)["metadata"]["labels"]
        assert MARKER not in labels
        assert LABELS_BEFORE not in (_node(k8s_admin, node)["metadata"].get("annotations") or {})


def test_a_node_labelled_by_an_older_eksir_is_restored_by_its_rollback(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    """Older versions wrote investigation=<case-id> and eksir.io/case-id and noted both before-values."""
    before = _node(k8s_admin, node)
    old = {"labels": {MARKER: CASE_ID, "eksir.io/case-id": CASE_ID}}
    note = json.dumps({MARKER: None, "eksir.io/case-id": None})
    CoreV1Api(k8s_admin).patch_node(node, {"metadata": {**old, "annotations": {LABELS_BEFORE: note}}})
    applied = {"node_name": node, "node_uid": before["metadata"]["uid"], "labels_before": json.loads(note)}
    LabelNode().rollback(ctx, NodeParams(node_name=node), applied)
    assert _without_version(_node(k8s_admin, node)) == _without_version(before)


def test_two_cases_cordon_one_node_and_only_the_last_rollback_uncordons_it(
    k8s_admin: ApiClient, node: str
) -> None:
    before = _node(k8s_admin, node)
    first, second = (make_ctx(k8s=lambda: k8s_admin, case_id=c) for c in ("case-a", "case-b"))
    params = NodeParams(node_name=node)
    applied_first = CordonNode().apply(first, params)
    applied_second = CordonNode().apply(second, params)
    assert applied_first["was_unschedulable"] is applied_second["was_unschedulable"] is False
    assert CORDON.holders(_node(k8s_admin, node)) == ["case-a", "case-b"]
    assert any("case-b" in w for w in CordonNode().check(first, params).warnings)
    CordonNode().rollback(first, params, applied_first)
    assert _node(k8s_admin, node)["spec"]["unschedulable"] is True
    assert CordonNode().verify(second, params, applied_second).ok
    CordonNode().rollback(second, params, applied_second)
    assert _without_version(_node(k8s_admin, node)) == _without_version(before)


def test_a_missing_node_is_a_failed_check_and_a_not_found_error(ctx: ActionContext) -> None:
    params = NodeParams(node_name="ip-10-9-9-9.ec2.internal")
    assert not CordonNode().check(ctx, params).ok
    with pytest.raises(NotFoundError):
        CordonNode().apply(ctx, params)
    with pytest.raises(NotFoundError):
        LabelNode().apply(ctx, params)


def test_bad_parameters_and_case_ids_are_rejected(k8s_admin: ApiClient, node: str) -> None:
    with pytest.raises(ValidationError):
        NodeParams.model_validate({"node_name": "Bad_Name"})
    with pytest.raises(ValidationError):
        NodeParams.model_validate({"node_name": node, "drain": True})
    for bad in ("case id with spaces", "eksir-" + "0" * 58, "-case", "case/x"):
        bad_case = make_ctx(k8s=lambda: k8s_admin, case_id=bad)
        for action in (LabelNode(), CordonNode()):
            with pytest.raises(BadInputError, match="1-63"):
                action.apply(bad_case, NodeParams(node_name=node))
    assert _without_version(_node(k8s_admin, node))["metadata"]["labels"] == {
        "kubernetes.io/os": "linux",
        "team": "blue",
    }
    assert not _node(k8s_admin, node)["spec"].get("unschedulable")


def test_a_dry_run_changes_nothing(k8s_admin: ApiClient, node: str) -> None:
    dry = make_ctx(k8s=lambda: k8s_admin, dry_run=True)
    with pytest.raises(RefusedError):
        CordonNode().apply(dry, NodeParams(node_name=node))
    assert not _node(k8s_admin, node)["spec"].get("unschedulable")


def test_the_declared_rbac_rules_are_enough_for_the_whole_lifecycle(
    control_plane: ControlPlane, k8s_admin: ApiClient, node: str
) -> None:
    cordon, label = get_action("k8s.cordon_node"), get_action("k8s.label_node")
    with restricted_client(control_plane, k8s_admin, cordon, label) as api:
        ctx = make_ctx(k8s=lambda: api)
        params = NodeParams(node_name=node)
        for action in (cordon, label):
            assert action.check(ctx, params).ok
            action.plan(ctx, params)
            applied = action.apply(ctx, params)
            assert action.verify(ctx, params, applied).ok
            action.rollback(ctx, params, applied)
    final = _node(k8s_admin, node)
    assert not final["spec"].get("unschedulable")
    assert MARKER not in final["metadata"]["labels"]
