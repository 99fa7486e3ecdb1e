"""attacker_items: each logged CloudTrail write becomes the item recovery acts on (pure; no lab needed).

The lab scenarios exercise a few calls end to end (tests/recovery/test_recovery_lab.py); these cover every
call the recovery rules know, plus what falls through to the worklist, with CloudTrail-shaped records.
"""

from __future__ import annotations

from typing import Any

import pytest

from eksir.playbooks.recovery_inventory import Item, attacker_items


def _event(name: str, req: dict[str, Any], resp: dict[str, Any] | None = None, **raw: Any) -> dict[str, Any]:
    record = {
        "eventName": name,
        "eventSource": raw.pop("source", "iam.amazonaws.com"),
        "recipientAccountId": "111122223333",
        "requestParameters": req,
        "responseElements": resp,
        **raw,
    }
    return {
        "origin": "cloudtrail",
        "event_id": f"id-{name}",
        "event_time": "2026-12-01T00:00:00Z",
        "raw": record,
    }


def _one(event: dict[str, Any]) -> Item:
    [item] = attacker_items({"events": [event]})
    assert (item.event_id, item.call, item.at) == (
        event["event_id"],
        event["raw"]["eventName"],
        event["event_time"],
    )
    return item


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            _event("CreateUser", {"userName": "backdoor"}),
            ("created", "AWS::IAM::User", "backdoor", "iam.delete_user", {"user_name": "backdoor"}),
        ),
        (
            _event(
                "CreateAccessKey", {"userName": "backdoor"}, {"accessKey": {"accessKeyId": "AKIAEXAMPLE"}}
            ),
            (
                "created",
                "AWS::IAM::AccessKey",
                "AKIAEXAMPLE",
                "iam.delete_access_key",
                {"user_name": "backdoor", "access_key_id": "AKIAEXAMPLE"},
            ),
        ),
        (
            _event("CreateRole", {"roleName": "r"}),
            ("created", "AWS::IAM::Role", "r", "iam.delete_role", {"role_name": "r"}),
        ),
        (
            _event("CreatePolicy", {"policyName": "p", "path": "/x/"}),
            (
                "created",
                "AWS::IAM::Policy",
                "arn:aws:iam::111122223333:policy/x/p",
                "iam.delete_policy",
                {"policy_arn": "arn:aws:iam::111122223333:policy/x/p"},
            ),
        ),
        (
            _event("CreateFunction20150331", {"functionName": "f"}, source="lambda.amazonaws.com"),
            (
                "created",
                "AWS::Lambda::Function",
                "f",
                "lambda.delete_function",
                {"function_name": "f"},
            ),
        ),
        (
            _event("CreateBucket", {"bucketName": "loot"}, source="s3.amazonaws.com"),
            ("created", "AWS::S3::Bucket", "loot", "s3.delete_bucket", {"bucket": "loot"}),
        ),
    ],
    ids=lambda value: value["raw"]["eventName"] if isinstance(value, dict) else "",
)
def test_a_recoverable_creation_names_its_resource_and_its_undo(
    event: dict[str, Any], expected: tuple[str, str, str, str, dict[str, str]]
) -> None:
    item = _one(event)
    assert (item.disposition, item.kind, item.name, item.action_id, item.params) == expected


def test_a_new_access_key_hangs_off_its_user() -> None:
    item = _one(_event("CreateAccessKey", {}, {"accessKey": {"accessKeyId": "AKIA1", "userName": "u"}}))
    assert item.parent == "AWS::IAM::User/u"


def test_a_policy_attachment_is_a_change_undone_by_a_detach() -> None:
    item = _one(_event("AttachRolePolicy", {"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/Admin"}))
    assert (item.disposition, item.kind, item.name, item.action_id) == (
        "changed",
        "AWS::IAM::Role",
        "r",
        "iam.detach_policy",
    )
    assert item.params == {
        "principal_type": "role",
        "principal_name": "r",
        "policy_arn": "arn:aws:iam::aws:policy/Admin",
    }
    assert (item.before, item.after, item.parent) == (
        {"attached": False},
        {"attached": item.params["policy_arn"]},
        "AWS::IAM::Role/r",
    )


def test_run_instances_yields_one_termination_per_instance() -> None:
    event = _event(
        "RunInstances",
        {},
        {"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}, {"no": "id"}]}},
        source="ec2.amazonaws.com",
    )
    items = attacker_items({"events": [event]})
    assert [(i.name, i.action_id, i.params) for i in items] == [
        ("i-1", "ec2.terminate_instance", {"instance_id": "i-1"}),
        ("i-2", "ec2.terminate_instance", {"instance_id": "i-2"}),
    ]


def test_other_writes_go_to_the_worklist_with_what_was_logged_and_reads_or_failures_are_ignored() -> None:
    deleted = _event("DeleteTrail", {"name": "org-trail"}, source="cloudtrail.amazonaws.com")
    changed = _event("PutBucketPolicy", {"bucketName": "b"}, {"ok": True}, source="s3.amazonaws.com")
    read = _event("GetObject", {"bucketName": "b"}, source="s3.amazonaws.com", readOnly=True)
    failed = {**_event("CreateUser", {"userName": "x"}), "failed": True}
    items = attacker_items({"events": [deleted, changed, read, failed]})
    assert [(i.disposition, i.kind, i.name, i.action_id) for i in items] == [
        ("deleted", "AWS::Trail", "org-trail", None),
        ("changed", "AWS::s3.amazonaws.com", "b", None),
    ]
    assert items[0].before == {"name": "org-trail"}
    assert items[1].after == {"request": {"bucketName": "b"}, "response": {"ok": True}}
