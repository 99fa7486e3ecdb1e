"""From the hunt result in the case to what the attacker created, changed and deleted (pure, no I/O).

Why from the hunt and not from a fresh scan: the hunt is the case's record of the attacker's calls, with the
request and response exactly as logged, and the report cites the same events; recovery acting on anything
else could not be traced back to a logged call. Only successful write calls count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eksir.recovery.k8s_rest import ObjectRef

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


def _ct_items(event: dict[str, Any]) -> list[Item]:
    raw = _d(event.get("raw"))
    name, req, resp = (
        str(raw.get("eventName", "")),
        _d(raw.get("requestParameters")),
        _d(raw.get("responseElements")),
    )
    base: dict[str, Any] = {"event_id": event.get("event_id"), "call": name, "at": event.get("event_time")}
    account = str(raw.get("recipientAccountId") or _d(raw.get("userIdentity")).get("accountId") or "")
    if name == "CreateUser":
        user = str(req.get("userName"))
        return [
            Item(
                "created",
                "AWS::IAM::User",
                user,
                action_id="recovery.delete_iam_user",
                params={"user_name": user},
                **base,
            )
        ]
    if name == "CreateAccessKey":
        key = _d(resp.get("accessKey"))
        user = str(key.get("userName") or req.get("userName"))
        params = {"user_name": user, "access_key_id": str(key.get("accessKeyId"))}
        return [
            Item(
                "created",
                "AWS::IAM::AccessKey",
                params["access_key_id"],
                action_id="recovery.delete_access_key",
                params=params,
                parent=f"AWS::IAM::User/{user}",
                **base,
            )
        ]
    if name == "CreateRole":
        role = str(req.get("roleName"))
        return [
            Item(
                "created",
                "AWS::IAM::Role",
                role,
                action_id="recovery.delete_iam_role",
                params={"role_name": role},
                **base,
            )
        ]
    if name == "CreatePolicy":
        arn = (
            _d(resp.get("policy")).get("arn")
            or f"arn:aws:iam::{account}:policy{req.get('path') or '/'}{req.get('policyName')}"
        )
        return [
            Item(
                "created",
                "AWS::IAM::Policy",
                str(arn),
                action_id="recovery.delete_iam_policy",
                params={"policy_arn": str(arn)},
                **base,
            )
        ]
    if name in ("AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy"):
        kind = name[len("Attach") : -len("Policy")].lower()
        principal = str(req.get(f"{kind}Name"))
        params = {
            "principal_type": kind,
            "principal_name": principal,
            "policy_arn": str(req.get("policyArn")),
        }
        parent = f"AWS::IAM::{kind.capitalize()}/{principal}"
        return [
            Item(
                "changed",
                f"AWS::IAM::{kind.capitalize()}",
                principal,
                action_id="recovery.detach_policy",
                params=params,
                before={"attached": False},
                after={"attached": params["policy_arn"]},
                parent=parent,
                **base,
            )
        ]
    if name == "RunInstances":
        items = _d(resp.get("instancesSet")).get("items") or []
        return [
            Item(
                "created",
                "AWS::EC2::Instance",
                str(i["instanceId"]),
                action_id="recovery.terminate_instance",
                params={"instance_id": str(i["instanceId"])},
                **base,
            )
            for i in items
            if isinstance(i, dict) and i.get("instanceId")
        ]
    if name.startswith("CreateFunction"):
        fn = str(req.get("functionName"))
        return [
            Item(
                "created",
                "AWS::Lambda::Function",
                fn,
                action_id="recovery.delete_lambda_function",
                params={"function_name": fn},
                **base,
            )
        ]
    if name == "CreateBucket":
        bucket = str(req.get("bucketName"))
        return [
            Item(
                "created",
                "AWS::S3::Bucket",
                bucket,
                action_id="recovery.delete_s3_bucket",
                params={"bucket": bucket},
                **base,
            )
        ]
    target = _target(req)
    if name.startswith("Delete"):
        return [Item("deleted", f"AWS::{name[len('Delete') :]}", target, before=req, after=None, **base)]
    if name.startswith(_CHANGE_PREFIXES) or name.startswith("Create"):
        disposition = "created" if name.startswith("Create") else "changed"
        return [
            Item(
                disposition,
                f"AWS::{raw.get('eventSource', '?')}",
                target,
                before=None,
                after={"request": req, "response": resp},
                **base,
            )
        ]
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


def _k8s_items(event: dict[str, Any], earlier: dict[str, dict[str, Any]]) -> list[Item]:
    raw = _d(event.get("raw"))
    verb, ref = raw.get("verb"), _d(raw.get("objectRef"))
    resource = str(ref.get("resource") or "")
    if ref.get("subresource") or verb not in ("create", "update", "patch", "delete") or event.get("failed"):
        return []
    response = _d(raw.get("responseObject"))
    name = ref.get("name") or _d(response.get("metadata")).get("name")
    if not name:
        return []
    obj = ObjectRef(
        api_group=str(ref.get("apiGroup") or ""),
        api_version=str(ref.get("apiVersion") or "v1"),
        resource=resource,
        namespace=ref.get("namespace"),
        name=str(name),
    )
    key = obj.path()
    base: dict[str, Any] = {
        "event_id": event.get("event_id"),
        "call": f"{verb} {resource}",
        "at": event.get("event_time"),
    }
    label = obj.label()
    if verb == "create":
        if response.get("kind") not in (None, "Status"):
            earlier[key] = response
        if resource not in K8S_CREATED:
            return [Item("created", f"Kubernetes::{resource}", label, after=response, **base)]
        uid = _d(response.get("metadata")).get("uid")
        params = {"ref": obj.model_dump(), "uid": uid}
        return [
            Item(
                "created",
                f"Kubernetes::{resource}",
                label,
                action_id="recovery.delete_k8s_object",
                params=params,
                **base,
            )
        ]
    if verb == "delete":
        return [
            Item(
                "deleted",
                f"Kubernetes::{resource}",
                label,
                before=earlier.get(key) or response or None,
                after=None,
                **base,
            )
        ]
    before = earlier.get(key)
    if response.get("kind") not in (None, "Status"):
        earlier[key] = response
    if before is not None:
        params = {"ref": obj.model_dump(), "before": before}
        return [
            Item(
                "changed",
                f"Kubernetes::{resource}",
                label,
                action_id="recovery.restore_k8s_object",
                params=params,
                before=before,
                after=response,
                **base,
            )
        ]
    return [
        Item(
            "changed",
            f"Kubernetes::{resource}",
            label,
            before=None,
            after={"request": raw.get("requestObject"), "response": response or None},
            **base,
        )
    ]


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
