"""k8s.block_node_disruption against the real kube-apiserver, with the lab's own minimal NodeClaim CRD.

Karpenter cannot run here; what eksir must prove is that it finds the NodeClaim behind the node (by
status.nodeName or providerID) and marks both `karpenter.sh/do-not-disrupt: "true"`, restoring exactly the
before-state on rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi

from eksir.actions.base import ActionContext
from eksir.actions.containment.k8s_node import NodeParams
from eksir.actions.containment.node_disruption import BEFORE, DO_NOT_DISRUPT, BlockNodeDisruption
from eksir.lab.controlplane import ControlPlane
from eksir.lab.karpenter import GROUP, PLURAL, VERSION, install_nodeclaim_crd
from tests.actions.conftest import make_ctx
from tests.actions.test_k8s_node import restricted_client

pytestmark = pytest.mark.lab


@pytest.fixture
def ctx(k8s_admin: ApiClient) -> ActionContext:
    return make_ctx(k8s=lambda: k8s_admin)


def _node_body(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/os": "linux"}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"providerID": f"aws:///us-east-1a/i-0{uuid.uuid4().hex[:16]}"}}


@pytest.fixture
def make_node(k8s_admin: ApiClient) -> Iterator[Any]:
    made: list[str] = []

    def make(annotations: dict[str, str] | None = None) -> str:
        name = f"ip-10-1-{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}.ec2.internal"
        CoreV1Api(k8s_admin).create_node(_node_body(name, annotations))
        made.append(name)
        return name

    yield make
    for name in made:
        CoreV1Api(k8s_admin).delete_node(name)


@pytest.fixture
def claim_for(k8s_admin: ApiClient) -> Iterator[Any]:
    """Create a NodeClaim whose status names the node, as Karpenter's controller writes it."""
    install_nodeclaim_crd(k8s_admin)
    custom, made = CustomObjectsApi(k8s_admin), []

    def make(node: str, annotations: dict[str, str] | None = None, by_provider: bool = False) -> str:
        name = f"default-{uuid.uuid4().hex[:6]}"
        meta: dict[str, Any] = {"name": name}
        if annotations:
            meta["annotations"] = annotations
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "NodeClaim", "metadata": meta},
        )
        provider = CoreV1Api(k8s_admin).read_node(node).spec.provider_id
        status = {"providerID": provider} if by_provider else {"nodeName": node, "providerID": provider}
        custom.patch_cluster_custom_object_status(GROUP, VERSION, PLURAL, name, {"status": status})
        made.append(name)
        return name

    yield make
    for name in made:
        custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)


def _annotations(api: ApiClient, node: str | None = None, claim: str | None = None) -> dict[str, str]:
    if node:
        return dict(CoreV1Api(api).read_node(node).metadata.annotations or {})
    found = CustomObjectsApi(api).get_cluster_custom_object(GROUP, VERSION, PLURAL, claim)
    return dict(found["metadata"].get("annotations") or {})


def test_without_a_nodeclaim_only_the_node_is_marked_and_check_says_so(
    ctx: ActionContext, k8s_admin: ApiClient, make_node: Any
) -> None:
    node = make_node()
    params = NodeParams(node_name=node)
    outcome = BlockNodeDisruption().check(ctx, params)
    assert outcome.ok
    assert any("no Karpenter NodeClaim" in w for w in outcome.warnings)
    applied = BlockNodeDisruption().apply(ctx, params)
    assert [h["resource"] for h in applied["held"]] == ["nodes"]
    assert _annotations(k8s_admin, node=node)[DO_NOT_DISRUPT] == "true"
    assert BlockNodeDisruption().verify(ctx, params, applied).ok


def test_the_node_and_its_nodeclaim_are_held_verified_and_restored_exactly(
    ctx: ActionContext, k8s_admin: ApiClient, make_node: Any, claim_for: Any
) -> None:
    node = make_node({"team": "blue"})
    claim = claim_for(node)
    params = NodeParams(node_name=node)
    assert not BlockNodeDisruption().check(ctx, params).already_applied
    applied = BlockNodeDisruption().apply(ctx, params)
    assert {h["resource"] for h in applied["held"]} == {"nodes", "nodeclaims"}
    assert _annotations(k8s_admin, node=node)[DO_NOT_DISRUPT] == "true"
    assert _annotations(k8s_admin, claim=claim)[DO_NOT_DISRUPT] == "true"
    assert BlockNodeDisruption().verify(ctx, params, applied).ok
    assert BlockNodeDisruption().check(ctx, params).already_applied
    assert BlockNodeDisruption().apply(ctx, params) == applied, "a second apply changes nothing"
    BlockNodeDisruption().rollback(ctx, params, applied)
    assert _annotations(k8s_admin, node=node) == {"team": "blue"}
    assert _annotations(k8s_admin, claim=claim) == {}
    assert not BlockNodeDisruption().verify(ctx, params, applied).ok


def test_verify_fails_when_someone_removes_the_annotation_from_the_nodeclaim(
    ctx: ActionContext, k8s_admin: ApiClient, make_node: Any, claim_for: Any
) -> None:
    node = make_node()
    claim = claim_for(node, by_provider=True)  # found by providerID alone
    params = NodeParams(node_name=node)
    applied = BlockNodeDisruption().apply(ctx, params)
    patch = {"metadata": {"annotations": {DO_NOT_DISRUPT: None}}}
    CustomObjectsApi(k8s_admin).patch_cluster_custom_object(GROUP, VERSION, PLURAL, claim, patch)
    outcome = BlockNodeDisruption().verify(ctx, params, applied)
    assert not outcome.ok
    assert f"nodeclaims/{claim}" in outcome.detail


def test_a_value_set_before_the_case_comes_back_on_rollback(
    ctx: ActionContext, k8s_admin: ApiClient, make_node: Any, claim_for: Any
) -> None:
    node = make_node({DO_NOT_DISRUPT: "false"})
    claim = claim_for(node, {DO_NOT_DISRUPT: "true"})
    params = NodeParams(node_name=node)
    applied = BlockNodeDisruption().apply(ctx, params)
    assert _annotations(k8s_admin, node=node)[BEFORE] == "false"
    BlockNodeDisruption().rollback(ctx, params, applied)
    assert _annotations(k8s_admin, node=node) == {DO_NOT_DISRUPT: "false"}
    assert _annotations(k8s_admin, claim=claim) == {DO_NOT_DISRUPT: "true"}


def test_the_declared_rbac_is_enough(
    control_plane: ControlPlane, k8s_admin: ApiClient, make_node: Any, claim_for: Any
) -> None:
    node = make_node()
    claim_for(node)
    with restricted_client(control_plane, k8s_admin, BlockNodeDisruption()) as limited:
        ctx = make_ctx(k8s=lambda: limited)
        params = NodeParams(node_name=node)
        applied = BlockNodeDisruption().apply(ctx, params)
        assert BlockNodeDisruption().verify(ctx, params, applied).ok
        BlockNodeDisruption().rollback(ctx, params, applied)


def test_two_cases_hold_one_node_and_only_the_last_rollback_releases_it(
    k8s_admin: ApiClient, make_node: Any, claim_for: Any
) -> None:
    node = make_node({DO_NOT_DISRUPT: "false"})
    claim = claim_for(node)
    first, second = (make_ctx(k8s=lambda: k8s_admin, case_id=c) for c in ("case-a", "case-b"))
    params = NodeParams(node_name=node)
    applied_first = BlockNodeDisruption().apply(first, params)
    applied_second = BlockNodeDisruption().apply(second, params)
    assert BlockNodeDisruption().verify(first, params, applied_first).ok
    held = _annotations(k8s_admin, node=node)
    assert held[BEFORE] == "false", "the note keeps the value before eksir's first case"
    assert {k for k in held if k.startswith("do-not-disrupt.eksir.io/")} == {
        "do-not-disrupt.eksir.io/case-a",
        "do-not-disrupt.eksir.io/case-b",
    }
    BlockNodeDisruption().rollback(first, params, applied_first)
    assert BlockNodeDisruption().verify(second, params, applied_second).ok
    assert _annotations(k8s_admin, claim=claim)[DO_NOT_DISRUPT] == "true"
    BlockNodeDisruption().rollback(second, params, applied_second)
    assert _annotations(k8s_admin, node=node) == {DO_NOT_DISRUPT: "false"}
    assert _annotations(k8s_admin, claim=claim) == {}
