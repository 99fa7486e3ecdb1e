"""k8s.cordon_node and k8s.label_node against the real kube-apiserver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from eksir.actions.base import Action, ActionContext
from eksir.actions.containment.k8s_node import CordonNode, LabelNode, NodeParams
from eksir.actions.registry import get_action
from eksir.errors import BadInputError, NotFoundError, RefusedError
from eksir.lab.controlplane import ControlPlane
from tests.actions.conftest import CASE_ID, make_ctx

pytestmark = pytest.mark.lab
INVESTIGATION = "eksir.io/investigation"


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


def test_labelling_adds_the_case_labels_keeps_the_others_and_rollback_removes_them(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    before = _node(k8s_admin, node)
    params = NodeParams(node_name=node)
    applied = LabelNode().apply(ctx, params)
    labels = _node(k8s_admin, node)["metadata"]["labels"]
    assert labels[INVESTIGATION] == CASE_ID
    assert labels["eksir.io/case-id"] == CASE_ID
    assert labels["team"] == "blue"
    assert LabelNode().verify(ctx, params, applied).ok
    assert LabelNode().apply(ctx, params) == applied
    LabelNode().rollback(ctx, params, applied)
    assert _without_version(_node(k8s_admin, node)) == _without_version(before)


def test_label_rollback_restores_a_prior_investigation_value(
    ctx: ActionContext, k8s_admin: ApiClient, node: str
) -> None:
    CoreV1Api(k8s_admin).patch_node(node, {"metadata": {"labels": {INVESTIGATION: "case-older"}}})
    params = NodeParams(node_name=node)
    assert LabelNode().check(ctx, params).warnings
    applied = LabelNode().apply(ctx, params)
    assert _node(k8s_admin, node)["metadata"]["labels"][INVESTIGATION] == CASE_ID
    LabelNode().rollback(ctx, params, applied)
    labels = _node(k8s_admin, node)["metadata"]["labels"]
    assert labels[INVESTIGATION] == "case-older"
    assert "eksir.io/case-id" not in labels


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
    bad_case = make_ctx(k8s=lambda: k8s_admin, case_id="case id with spaces")
    with pytest.raises(BadInputError):
        LabelNode().apply(bad_case, NodeParams(node_name=node))


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
    assert INVESTIGATION not in final["metadata"]["labels"]
