"""eks.delete_access_entry with botocore Stubber (moto has no access entries; Stubber checks every request
and response against the real EKS service model)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from eksir.actions.base import ActionContext
from eksir.actions.containment.eks_access import DeleteAccessEntry, DeleteAccessEntryParams
from eksir.actions.evidence.case_evidence import CASE_EXTRA
from eksir.actions.registry import get_action
from eksir.errors import PermissionDeniedError, RefusedError
from tests.actions.case_helpers import empty_case
from tests.actions.conftest import make_ctx, stubbed

CLUSTER = "prod-eks"
ROLE = "arn:aws:iam::111122223333:role/ci-deployer"
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
KEY = {"clusterName": CLUSTER, "principalArn": ROLE}
PARAMS = DeleteAccessEntryParams(cluster_name=CLUSTER, principal_arn=ROLE)
WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
ENTRY = {
    "clusterName": CLUSTER,
    "principalArn": ROLE,
    "kubernetesGroups": ["deployers", "viewers"],
    "accessEntryArn": f"arn:aws:eks:us-east-1:111122223333:access-entry/{CLUSTER}/role/111122223333/"
    "ci-deployer/a2c9d0e1-1234-5678-9abc-def012345678",
    "createdAt": WHEN,
    "modifiedAt": WHEN,
    "tags": {"team": "platform"},
    "username": "arn:aws:sts::111122223333:assumed-role/ci-deployer/{{SessionName}}",
    "type": "STANDARD",
}
PAGE_1 = {
    "clusterName": CLUSTER,
    "principalArn": ROLE,
    "nextToken": "page-2",
    "associatedAccessPolicies": [
        {"policyArn": ADMIN, "accessScope": {"type": "cluster"}, "associatedAt": WHEN, "modifiedAt": WHEN}
    ],
}
PAGE_2 = {
    "clusterName": CLUSTER,
    "principalArn": ROLE,
    "associatedAccessPolicies": [
        {
            "policyArn": EDIT,
            "accessScope": {"type": "namespace", "namespaces": ["ci", "staging"]},
            "associatedAt": WHEN,
            "modifiedAt": WHEN,
        }
    ],
}


def _not_found(stub: Stubber, operation: str) -> None:
    stub.add_client_error(
        operation,
        service_error_code="ResourceNotFoundException",
        service_message="The specified access entry resource could not be found.",
        http_status_code=404,
        expected_params=KEY,
    )


def _backup_calls(stub: Stubber) -> None:
    stub.add_response("describe_access_entry", {"accessEntry": ENTRY}, KEY)
    stub.add_response("list_associated_access_policies", PAGE_1, KEY)
    stub.add_response("list_associated_access_policies", PAGE_2, {**KEY, "nextToken": "page-2"})


def _ctx(client: Any, **extras: Any) -> ActionContext:
    ctx = make_ctx(aws=lambda service: client)
    ctx.extras.update(extras)
    return ctx


def test_apply_backs_up_entry_and_every_policy_page_then_deletes() -> None:
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _backup_calls(stub)
        stub.add_response("delete_access_entry", {}, KEY)
        applied = DeleteAccessEntry().apply(_ctx(eks), PARAMS)
        stub.assert_no_pending_responses()
    assert applied["deleted"] is True
    assert applied["entry"]["kubernetesGroups"] == ["deployers", "viewers"]
    assert applied["entry"]["createdAt"] == WHEN.isoformat()
    assert applied["policies"] == [
        {"policyArn": ADMIN, "accessScope": {"type": "cluster"}},
        {"policyArn": EDIT, "accessScope": {"type": "namespace", "namespaces": ["ci", "staging"]}},
    ]
    json.dumps(applied)  # the engine persists it as JSON


def test_the_backup_is_entered_into_the_case_before_the_delete(tmp_path: Path) -> None:
    case = empty_case(tmp_path / "case")
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _backup_calls(stub)
        stub.add_response("delete_access_entry", {}, KEY)
        applied = DeleteAccessEntry().apply(_ctx(eks, **{CASE_EXTRA: case}), PARAMS)
    items = case.load().evidence
    assert len(items) == 1
    saved = json.loads((case.path / items[0].path).read_bytes())
    assert saved["entry"]["username"] == ENTRY["username"]
    assert len(saved["policies"]) == 2
    assert applied["backup_evidence"]["sha256"] == items[0].sha256


def test_an_interrupted_apply_recovers_the_backup_from_the_case(tmp_path: Path) -> None:
    """The first process deleted the entry and died before the engine saved the applied record."""
    case = empty_case(tmp_path / "case")
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _backup_calls(stub)
        stub.add_response("delete_access_entry", {}, KEY)
        first = DeleteAccessEntry().apply(_ctx(eks, **{CASE_EXTRA: case}), PARAMS)
        _not_found(stub, "describe_access_entry")
        again = DeleteAccessEntry().apply(_ctx(eks, **{CASE_EXTRA: case}), PARAMS)
    assert again["deleted"] is True
    assert again["entry"] == first["entry"]
    assert again["policies"] == first["policies"]


def test_verify_reads_the_entry_back_and_accepts_only_not_found() -> None:
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _not_found(stub, "describe_access_entry")
        stub.add_response("describe_access_entry", {"accessEntry": ENTRY}, KEY)
        gone = DeleteAccessEntry().verify(_ctx(eks), PARAMS, {"deleted": True})
        still = DeleteAccessEntry().verify(_ctx(eks), PARAMS, {"deleted": True})
    assert gone.ok
    assert "ResourceNotFoundException" in gone.detail
    assert not still.ok
    assert "still exists" in still.detail


def test_rollback_recreates_the_entry_and_reassociates_each_policy_with_its_scope() -> None:
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _backup_calls(stub)
        stub.add_response("delete_access_entry", {}, KEY)
        applied = DeleteAccessEntry().apply(_ctx(eks), PARAMS)
        _not_found(stub, "describe_access_entry")
        stub.add_response(
            "create_access_entry",
            {"accessEntry": ENTRY},
            {
                **KEY,
                "kubernetesGroups": ["deployers", "viewers"],
                "username": ENTRY["username"],
                "type": "STANDARD",
                "tags": {"team": "platform"},
            },
        )
        for policy, scope in (
            (ADMIN, {"type": "cluster"}),
            (EDIT, {"type": "namespace", "namespaces": ["ci", "staging"]}),
        ):
            stub.add_response(
                "associate_access_policy",
                {
                    "clusterName": CLUSTER,
                    "principalArn": ROLE,
                    "associatedAccessPolicy": {"policyArn": policy},
                },
                {**KEY, "policyArn": policy, "accessScope": scope},
            )
        DeleteAccessEntry().rollback(_ctx(eks), PARAMS, json.loads(json.dumps(applied)))
        stub.assert_no_pending_responses()


def test_rollback_of_a_namespace_scope_sends_the_same_namespaces() -> None:
    eks = stubbed("eks")
    applied = {
        "deleted": True,
        "entry": {"clusterName": CLUSTER, "principalArn": ROLE, "type": "STANDARD"},
        "policies": [
            {"policyArn": EDIT, "accessScope": {"type": "namespace", "namespaces": ["ci", "staging"]}}
        ],
    }
    with Stubber(eks) as stub:
        stub.add_response("describe_access_entry", {"accessEntry": ENTRY}, KEY)  # already recreated
        stub.add_response(
            "associate_access_policy",
            {"clusterName": CLUSTER, "principalArn": ROLE, "associatedAccessPolicy": {"policyArn": EDIT}},
            {**KEY, "policyArn": EDIT, "accessScope": {"type": "namespace", "namespaces": ["ci", "staging"]}},
        )
        DeleteAccessEntry().rollback(_ctx(eks), PARAMS, applied)
        stub.assert_no_pending_responses()


def test_no_such_entry_is_nothing_to_do_and_rollback_recreates_nothing() -> None:
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _not_found(stub, "describe_access_entry")
        _not_found(stub, "describe_access_entry")
        check = DeleteAccessEntry().check(_ctx(eks), PARAMS)
        applied = DeleteAccessEntry().apply(_ctx(eks), PARAMS)
        DeleteAccessEntry().rollback(_ctx(eks), PARAMS, applied)  # no call queued: any call would fail
        stub.assert_no_pending_responses()
    assert check.ok
    assert check.already_applied
    assert "nothing to do" in check.detail
    assert applied == {"deleted": False, "entry": None, "policies": []}


def test_access_denied_is_a_permission_error() -> None:
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        stub.add_client_error(
            "describe_access_entry",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: eks:DescribeAccessEntry",
            http_status_code=403,
            expected_params=KEY,
        )
        with pytest.raises(PermissionDeniedError, match="eks:DescribeAccessEntry"):
            DeleteAccessEntry().check(_ctx(eks), PARAMS)


def test_a_node_entry_is_refused_because_deleting_it_breaks_the_nodes() -> None:
    eks = stubbed("eks")
    node = {**ENTRY, "type": "EC2_LINUX", "username": "system:node:{{EC2PrivateDNSName}}"}
    with Stubber(eks) as stub:
        stub.add_response("describe_access_entry", {"accessEntry": node}, KEY)
        outcome = DeleteAccessEntry().check(_ctx(eks), PARAMS)
    assert not outcome.ok
    assert "EC2_LINUX" in outcome.detail


def test_plan_shows_the_entry_and_policies_that_go() -> None:
    eks = stubbed("eks")
    with Stubber(eks) as stub:
        _backup_calls(stub)
        planned = DeleteAccessEntry().plan(_ctx(eks), PARAMS)
    text = "\n".join(planned.diff)
    assert "deployers" in text
    assert ADMIN in text
    assert '"namespaces": ["ci", "staging"]' in text
    assert ROLE in planned.blast_radius[0]


def test_a_dry_run_apply_is_refused_before_any_call() -> None:
    eks = stubbed("eks")
    ctx = make_ctx(aws=lambda service: eks, dry_run=True)
    with Stubber(eks), pytest.raises(RefusedError):
        DeleteAccessEntry().apply(ctx, PARAMS)


def test_the_action_is_registered_with_its_exact_iam_actions() -> None:
    action = get_action("eks.delete_access_entry")
    assert set(action.spec.iam_actions) >= {
        "eks:DescribeAccessEntry",
        "eks:ListAssociatedAccessPolicies",
        "eks:DeleteAccessEntry",
        "eks:CreateAccessEntry",
        "eks:AssociateAccessPolicy",
    }
    assert action.spec.destructive
    assert action.spec.reversible
