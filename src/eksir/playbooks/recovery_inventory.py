"""From the hunt result in the case to what the attacker created, changed and deleted (pure, no I/O).

Why from the hunt and not from a fresh scan: the hunt is the case's record of the attacker's calls, with the
request and response exactly as logged, and the report cites the same events; recovery acting on anything
else could not be traced back to a logged call. Only successful write calls count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eksir.models.k8s_object import ObjectRef

K8S_CREATED = frozenset(
    {
        "pods",
        "daemonsets",
        "deployments",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "rolebindings",
        "clusterrolebindings",
        "roles",
        "clusterroles",
        "secrets",
        "serviceaccounts",
        "configmaps",
        "services",
    }
)
_CHANGE_PREFIXES = (
    "Put",
    "Update",
    "Modify",
    "Set",
    "Attach",
    "Add",
    "Authorize",
    "Revoke",
    "Stop",
    "Disable",
    "Enable",
    "Replace",
)


@dataclass(frozen=True)
class Item:
    """One thing the attacker did to one resource, and the recovery action for it when there is one."""

    disposition: str  # created | changed | deleted
    kind: str
    name: str
    event_id: str | None
    call: str
    at: str | None
    action_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    before: Any = None
    after: Any = None
    parent: str | None = None  # for keys/attachments: the principal they hang off


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class _Call:
    """One logged CloudTrail call, as the recovery rules read it."""

    name: str
    source: str
    req: dict[str, Any]
    resp: dict[str, Any]
    account: str
    base: dict[str, Any]  # event_id, call, at: carried into every item the call yields


def _call(event: dict[str, Any]) -> _Call:
    raw = _d(event.get("raw"))
    name = str(raw.get("eventName", ""))
    return _Call(
        name=name,
        source=str(raw.get("eventSource", "?")),
        req=_d(raw.get("requestParameters")),
        resp=_d(raw.get("responseElements")),
        account=str(raw.get("recipientAccountId") or _d(raw.get("userIdentity")).get("accountId") or ""),
        base={"event_id": event.get("event_id"), "call": name, "at": event.get("event_time")},
    )


def _created(call: _Call, kind: str, name: str, action_id: str, params: dict[str, Any], **extra: Any) -> Item:
    return Item("created", kind, name, action_id=action_id, params=params, **extra, **call.base)


def _create_user(call: _Call) -> list[Item]:
    user = str(call.req.get("userName"))
    return [_created(call, "AWS::IAM::User", user, "iam.delete_user", {"user_name": user})]


def _create_access_key(call: _Call) -> list[Item]:
    key = _d(call.resp.get("accessKey"))
    user = str(key.get("userName") or call.req.get("userName"))
    params = {"user_name": user, "access_key_id": str(key.get("accessKeyId"))}
    return [
        _created(
            call,
            "AWS::IAM::AccessKey",
            params["access_key_id"],
            "iam.delete_access_key",
            params,
            parent=f"AWS::IAM::User/{user}",
        )
    ]


def _create_role(call: _Call) -> list[Item]:
    role = str(call.req.get("roleName"))
    return [_created(call, "AWS::IAM::Role", role, "iam.delete_role", {"role_name": role})]


def _create_policy(call: _Call) -> list[Item]:
    req = call.req
    arn = str(
        _d(call.resp.get("policy")).get("arn")
        or f"arn:aws:iam::{call.account}:policy{req.get('path') or '/'}{req.get('policyName')}"
    )
    return [_created(call, "AWS::IAM::Policy", arn, "iam.delete_policy", {"policy_arn": arn})]


def _attach_policy(call: _Call) -> list[Item]:
    kind = call.name[len("Attach") : -len("Policy")].lower()
    principal = str(call.req.get(f"{kind}Name"))
    params = {
        "principal_type": kind,
        "principal_name": principal,
        "policy_arn": str(call.req.get("policyArn")),
    }
    resource = f"AWS::IAM::{kind.capitalize()}"
    return [
        Item(
            "changed",
            resource,
            principal,
            action_id="iam.detach_policy",
            params=params,
            before={"attached": False},
            after={"attached": params["policy_arn"]},
            parent=f"{resource}/{principal}",
            **call.base,
        )
    ]


def _run_instances(call: _Call) -> list[Item]:
    items = _d(call.resp.get("instancesSet")).get("items") or []
    ids = [str(i["instanceId"]) for i in items if isinstance(i, dict) and i.get("instanceId")]
    return [
        _created(call, "AWS::EC2::Instance", i, "ec2.terminate_instance", {"instance_id": i}) for i in ids
    ]


def _create_function(call: _Call) -> list[Item]:
    fn = str(call.req.get("functionName"))
    params = {"function_name": fn}
    return [_created(call, "AWS::Lambda::Function", fn, "lambda.delete_function", params)]


def _create_bucket(call: _Call) -> list[Item]:
    bucket = str(call.req.get("bucketName"))
    return [_created(call, "AWS::S3::Bucket", bucket, "s3.delete_bucket", {"bucket": bucket})]


_RECOVERABLE: dict[str, Callable[[_Call], list[Item]]] = {
    "CreateUser": _create_user,
    "CreateAccessKey": _create_access_key,
    "CreateRole": _create_role,
    "CreatePolicy": _create_policy,
    "AttachUserPolicy": _attach_policy,
    "AttachRolePolicy": _attach_policy,
    "AttachGroupPolicy": _attach_policy,
    "RunInstances": _run_instances,
    "CreateBucket": _create_bucket,
}
"""Calls whose effect eksir can undo, by event name (Lambda's CreateFunction carries an API date suffix)."""


def _ct_items(event: dict[str, Any]) -> list[Item]:
    """What one logged call did: a recoverable item where a rule knows the call, else a worklist item."""
    call = _call(event)
    rule = _RECOVERABLE.get(call.name) or (
        _create_function if call.name.startswith("CreateFunction") else None
    )
    if rule is not None:
        return rule(call)
    target = _target(call.req)
    if call.name.startswith("Delete"):
        kind = f"AWS::{call.name[len('Delete') :]}"
        return [Item("deleted", kind, target, before=call.req, after=None, **call.base)]
    if call.name.startswith((*_CHANGE_PREFIXES, "Create")):
        disposition = "created" if call.name.startswith("Create") else "changed"
        after = {"request": call.req, "response": call.resp}
        return [Item(disposition, f"AWS::{call.source}", target, before=None, after=after, **call.base)]
    return []


def _target(req: dict[str, Any]) -> str:
    for key in (
        "name",
        "userName",
        "roleName",
        "groupName",
        "policyArn",
        "bucketName",
        "groupId",
        "trailName",
        "functionName",
        "detectorId",
    ):
        if req.get(key):
            return str(req[key])
    return "?"


def _k8s_object(raw: dict[str, Any]) -> ObjectRef | None:
    """The object a successful write names, or None for reads, subresources and unnamed objects."""
    verb, ref = raw.get("verb"), _d(raw.get("objectRef"))
    if ref.get("subresource") or verb not in ("create", "update", "patch", "delete"):
        return None
    name = ref.get("name") or _d(_d(raw.get("responseObject")).get("metadata")).get("name")
    if not name:
        return None
    return ObjectRef(
        api_group=str(ref.get("apiGroup") or ""),
        api_version=str(ref.get("apiVersion") or "v1"),
        resource=str(ref.get("resource") or ""),
        namespace=ref.get("namespace"),
        name=str(name),
    )


def _k8s_items(event: dict[str, Any], earlier: dict[str, dict[str, Any]]) -> list[Item]:
    """One audit write as an Item; `earlier` remembers each object's last known state (for restores)."""
    raw = _d(event.get("raw"))
    obj = None if event.get("failed") else _k8s_object(raw)
    if obj is None:
        return []
    verb, response = raw.get("verb"), _d(raw.get("responseObject"))
    base: dict[str, Any] = {
        "event_id": event.get("event_id"),
        "call": f"{verb} {obj.resource}",
        "at": event.get("event_time"),
        "kind": f"Kubernetes::{obj.resource}",
        "name": obj.label(),
    }
    key = obj.path()
    before = earlier.get(key)
    if verb != "delete" and response.get("kind") not in (None, "Status"):
        earlier[key] = response
    if verb == "create":
        return [_k8s_created(obj, response, base)]
    if verb == "delete":
        return [Item("deleted", before=before or response or None, after=None, **base)]
    if before is not None:
        params = {"ref": obj.model_dump(), "before": before}
        action = "k8s.restore_object"
        return [Item("changed", action_id=action, params=params, before=before, after=response, **base)]
    after = {"request": raw.get("requestObject"), "response": response or None}
    return [Item("changed", before=None, after=after, **base)]


def _k8s_created(obj: ObjectRef, response: dict[str, Any], base: dict[str, Any]) -> Item:
    """A created object: removed by `k8s.delete_object` (pinned to its uid) if eksir deletes that kind."""
    if obj.resource not in K8S_CREATED:
        return Item("created", after=response, **base)
    params = {"ref": obj.model_dump(), "uid": _d(response.get("metadata")).get("uid")}
    return Item("created", action_id="k8s.delete_object", params=params, **base)


def attacker_items(hunt: dict[str, Any] | None) -> list[Item]:
    """Every successful write by the hunted principals, in log order, as an Item."""
    items: list[Item] = []
    earlier: dict[str, dict[str, Any]] = {}
    for event in (hunt or {}).get("events") or []:
        if not isinstance(event, dict) or event.get("failed"):
            continue
        if event.get("origin") == "cloudtrail":
            if _d(event.get("raw")).get("readOnly") is True:
                continue
            items.extend(_ct_items(event))
        elif event.get("origin") == "kubernetes":
            items.extend(_k8s_items(event, earlier))
    return items
