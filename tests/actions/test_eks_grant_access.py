"""`eks.grant_responder_access` (issue 14 item 5): break-glass access for the responder, and only that undone.

Access-entry mode uses botocore's Stubber (moto 5.2 has no EKS access entries: docs/moto-notes.md): each
request is checked against the EKS service model and the exact parameters, each response against its output
shape, and a call the test did not expect fails it. aws-auth mode runs against the session's real
kube-apiserver; kube-system/aws-auth is shared by the session, so the fixture saves and restores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from eksir.actions.containment.eks_grant_access import GRANT_ANNOTATION, GrantParams, GrantResponderAccess
from eksir.errors import RefusedError
from tests.actions.conftest import CASE_ID, make_ctx

CLUSTER = "prod-eks"
ROLE = "arn:aws:iam::111122223333:role/ir/oncall"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ACTION = GrantResponderAccess()


def _stubbed() -> tuple[Any, Stubber]:
    eks = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name="eu-west-1"
    ).client("eks")
    return eks, Stubber(eks)


def _entry(tags: dict[str, str], groups: list[str]) -> dict[str, Any]:
    return {
        "clusterName": CLUSTER,
        "principalArn": ROLE,
        "kubernetesGroups": groups,
        "accessEntryArn": f"arn:aws:eks:eu-west-1:111122223333:access-entry/{CLUSTER}/role/1",
        "createdAt": NOW,
        "modifiedAt": NOW,
        "tags": tags,
        "username": f"{ROLE}/{{{{SessionName}}}}",
        "type": "STANDARD",
    }


WHO = {"clusterName": CLUSTER, "principalArn": ROLE}
ENTRY_PARAMS = GrantParams(cluster_name=CLUSTER, principal_arn=ROLE, mode="access-entry")


def _missing(stub: Stubber) -> None:
    stub.add_client_error(
        "describe_access_entry", "ResourceNotFoundException", http_status_code=404, expected_params=WHO
    )


def test_an_access_entry_with_the_responder_group_and_the_case_tag_is_created_verified_and_deleted() -> None:
    eks, stub = _stubbed()
    ours = _entry({"eksir.io/case-id": CASE_ID}, ["eksir-responders"])
    _missing(stub)  # check
    _missing(stub)  # apply: read first
    create = {
        **WHO,
        "kubernetesGroups": ["eksir-responders"],
        "tags": {"eksir.io/case-id": CASE_ID},
        "type": "STANDARD",
    }
    stub.add_response("create_access_entry", {"accessEntry": ours}, create)
    stub.add_response("describe_access_entry", {"accessEntry": ours}, WHO)  # verify
    stub.add_response("describe_access_entry", {"accessEntry": ours}, WHO)  # rollback: ours?
    stub.add_response("delete_access_entry", {}, WHO)
    ctx = make_ctx(aws=lambda _service: eks)
    with stub:
        check = ACTION.check(ctx, ENTRY_PARAMS)
        applied = ACTION.apply(ctx, ENTRY_PARAMS)
        verified = ACTION.verify(ctx, ENTRY_PARAMS, applied)
        ACTION.rollback(ctx, ENTRY_PARAMS, applied)
        stub.assert_no_pending_responses()
    assert check.ok
    assert not check.already_applied
    assert applied == {"mode": "access-entry", "created": True}
    assert verified.ok


def test_an_access_entry_the_case_did_not_create_is_refused_and_never_deleted() -> None:
    eks, stub = _stubbed()
    theirs = _entry({"team": "platform"}, ["platform-admins"])
    stub.add_response("describe_access_entry", {"accessEntry": theirs}, WHO)  # check
    stub.add_response("describe_access_entry", {"accessEntry": theirs}, WHO)  # rollback: not ours, no delete
    ctx = make_ctx(aws=lambda _service: eks)
    with stub:
        check = ACTION.check(ctx, ENTRY_PARAMS)
        ACTION.rollback(ctx, ENTRY_PARAMS, {"mode": "access-entry", "created": True})
        stub.assert_no_pending_responses()
    assert not check.ok
    assert "did not create" in check.detail


def test_params_refuse_system_groups_and_an_admin_kubeconfig_outside_aws_auth_mode() -> None:
    with pytest.raises(ValidationError, match="system"):
        GrantParams(cluster_name=CLUSTER, principal_arn=ROLE, mode="aws-auth", group="system:masters")
    with pytest.raises(ValidationError, match="only used to edit aws-auth"):
        GrantParams(cluster_name=CLUSTER, principal_arn=ROLE, mode="access-entry", admin_kubeconfig="/k")


# ---- aws-auth mode, against the real API server
MAP_ROLES = """# managed by terraform
- rolearn: arn:aws:iam::111122223333:role/eks-node-group
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
"""
AUTH_PARAMS = GrantParams(cluster_name=CLUSTER, principal_arn=ROLE, mode="aws-auth")


def _cm(api: ApiClient) -> dict[str, Any]:
    return dict(
        api.sanitize_for_serialization(CoreV1Api(api).read_namespaced_config_map("aws-auth", "kube-system"))
    )


def _replace(api: ApiClient, body: dict[str, Any] | None) -> None:
    core = CoreV1Api(api)
    try:
        core.delete_namespaced_config_map("aws-auth", "kube-system")
    except ApiException as exc:
        if exc.status != 404:
            raise
    if body is not None:
        core.create_namespaced_config_map("kube-system", body)


@pytest.fixture
def aws_auth(k8s_admin: ApiClient) -> Iterator[None]:
    try:
        saved: dict[str, Any] | None = _cm(k8s_admin)
        saved["metadata"] = {"name": "aws-auth", "annotations": saved["metadata"].get("annotations") or {}}
    except ApiException:
        saved = None
    _replace(k8s_admin, {"metadata": {"name": "aws-auth"}, "data": {"mapRoles": MAP_ROLES}})
    yield
    _replace(k8s_admin, saved)


@pytest.mark.lab
@pytest.mark.usefixtures("aws_auth")
def test_the_mapping_is_appended_keeping_every_byte_and_only_it_is_removed_even_after_others_edit(
    k8s_admin: ApiClient,
) -> None:
    ctx = make_ctx(k8s=lambda: k8s_admin)
    assert ACTION.check(ctx, AUTH_PARAMS).ok
    applied = ACTION.apply(ctx, AUTH_PARAMS)
    text = _cm(k8s_admin)["data"]["mapRoles"]
    assert text.startswith(MAP_ROLES)
    assert yaml.safe_load(text)[-1] == {
        "rolearn": "arn:aws:iam::111122223333:role/oncall",  # aws-auth matches roles without their path
        "username": "eksir-responder:{{SessionName}}",
        "groups": ["eksir-responders"],
    }
    assert CASE_ID in _cm(k8s_admin)["metadata"]["annotations"][GRANT_ANNOTATION]
    assert ACTION.verify(ctx, AUTH_PARAMS, applied).ok
    assert ACTION.check(ctx, AUTH_PARAMS).already_applied
    ACTION.apply(ctx, AUTH_PARAMS)  # idempotent
    assert _cm(k8s_admin)["data"]["mapRoles"] == text
    later = text + "- rolearn: arn:aws:iam::111122223333:role/added-later\n  username: later\n  groups: [x]\n"
    cm = _cm(k8s_admin)
    cm["data"]["mapRoles"] = later
    CoreV1Api(k8s_admin).replace_namespaced_config_map("aws-auth", "kube-system", cm)
    ACTION.rollback(ctx, AUTH_PARAMS, applied)
    after = _cm(k8s_admin)
    assert after["data"]["mapRoles"] == MAP_ROLES + later[len(text) :]
    assert GRANT_ANNOTATION not in (after["metadata"].get("annotations") or {})


@pytest.mark.lab
@pytest.mark.usefixtures("aws_auth")
def test_a_principal_already_mapped_by_someone_else_is_refused_and_left_alone(k8s_admin: ApiClient) -> None:
    cm = _cm(k8s_admin)
    cm["data"]["mapRoles"] += (
        "- rolearn: arn:aws:iam::111122223333:role/oncall\n  username: oncall\n  groups: [ro]\n"
    )
    CoreV1Api(k8s_admin).replace_namespaced_config_map("aws-auth", "kube-system", cm)
    ctx = make_ctx(k8s=lambda: k8s_admin)
    check = ACTION.check(ctx, AUTH_PARAMS)
    assert not check.ok
    assert "did not add" in check.detail
    with pytest.raises(RefusedError):
        ACTION.apply(ctx, AUTH_PARAMS)
    ACTION.rollback(ctx, AUTH_PARAMS, {})
    assert _cm(k8s_admin)["data"]["mapRoles"] == cm["data"]["mapRoles"]


@pytest.mark.lab
@pytest.mark.usefixtures("aws_auth")
def test_a_cluster_without_aws_auth_gets_one_holding_only_the_grant(k8s_admin: ApiClient) -> None:
    _replace(k8s_admin, None)
    ctx = make_ctx(k8s=lambda: k8s_admin)
    applied = ACTION.apply(ctx, AUTH_PARAMS)
    assert applied["created_configmap"] is True
    assert [e["rolearn"] for e in yaml.safe_load(_cm(k8s_admin)["data"]["mapRoles"])] == [
        "arn:aws:iam::111122223333:role/oncall"
    ]
    assert ACTION.verify(ctx, AUTH_PARAMS, applied).ok
