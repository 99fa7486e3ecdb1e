"""Deny the node role's credentials delivered to the attacked instance, and only those.

Why: root in a privileged pod reads the node role's credentials from IMDS (a hostNetwork pod is not stopped by
the IMDSv2 hop limit) and can use them from anywhere. Revoking the role's older sessions would cut every node
of the node group; instead, credentials EC2 delivers to an instance carry the instance in their context
(`ec2:SourceInstanceARN`, and `aws:ec2InstanceSourceVPC` + `aws:ec2InstanceSourcePrivateIPv4`), wherever
they are used from, so an inline Deny on those keys cuts exactly the attacked instance's credentials, present
and future, while the other nodes on the role keep working.

Why after capture is verified, never beside it: the node's SSM agent and the capture's upload use the same
credentials, so the deny would kill the evidence (the playbook makes this step depend on the capture).
Why the kubelet is not contained by it: EKS authenticates with a presigned `sts:GetCallerIdentity`, which
works under an explicit Deny; the kubelet's Kubernetes identity stays valid until the node is gone, so the
node is cordoned and isolated now and its termination is planned after the evidence (`eksir recover`).
Rollback deletes the inline policy (or restores the document it replaced).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

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
from eksir.actions.containment.casework import INSTANCE_ID_PATTERN, require_live
from eksir.actions.containment.iam_inline import put_inline, read_inline, restore_inline
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

KUBELET_WARNING = (
    "the kubelet's credentials stay valid until the node is gone: an IAM Deny does not stop EKS "
    "authentication (a presigned sts:GetCallerIdentity works under it), so the node keeps its Kubernetes "
    "identity; it is cordoned and isolated now, and its termination is planned after the evidence "
    "(eksir recover: k8s.drain_terminate_node, once the snapshots are verified)"
)


class DenyInstanceCredentialsParams(ActionParams):
    instance_id: str = Field(pattern=INSTANCE_ID_PATTERN)
    role_name: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")
    """The node role; None: the role of the instance's profile, read when the step runs."""


def policy_name(instance_id: str) -> str:
    return f"eksir-deny-instance-{instance_id}"


def instance_deny_document(instance_arn: str, vpc_id: str | None, private_ip: str | None) -> dict[str, Any]:
    """Deny everything to credentials EC2 delivered to this instance (two independent statements)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EksirDenyCredentialsOfInstance",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"ArnEquals": {"ec2:SourceInstanceARN": instance_arn}},
        }
    ]
    if vpc_id and private_ip:
        statements.append(
            {
                "Sid": "EksirDenyCredentialsDeliveredToInstanceAddress",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:ec2InstanceSourceVPC": vpc_id},
                    "IpAddress": {"aws:ec2InstanceSourcePrivateIPv4": f"{private_ip}/32"},
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def instance_facts(ctx: ActionContext, params: DenyInstanceCredentialsParams) -> dict[str, Any]:
    """ARN, VPC, primary private IP and node role of the instance.

    Raises NotFoundError (no instance, no instance profile or role), other eksir errors from EC2/IAM.
    """
    ec2 = ctx.aws("ec2")
    with aws_call(f"describe EC2 instance {params.instance_id}"):
        found = ec2.describe_instances(InstanceIds=[params.instance_id])["Reservations"]
    raw = next((i for r in found for i in r.get("Instances") or []), None)
    if raw is None:
        raise NotFoundError(f"EC2 instance {params.instance_id} does not exist")
    profile_arn = str((raw.get("IamInstanceProfile") or {}).get("Arn") or "")
    if not profile_arn:
        raise NotFoundError(f"EC2 instance {params.instance_id} has no instance profile: no node role")
    partition, account = profile_arn.split(":")[1], profile_arn.split(":")[4]
    region = ctx.region or ec2.meta.region_name
    role = params.role_name or _profile_role(ctx, profile_arn)
    return {
        "instance_arn": f"arn:{partition}:ec2:{region}:{account}:instance/{params.instance_id}",
        "vpc_id": raw.get("VpcId"),
        "private_ip": raw.get("PrivateIpAddress"),
        "role_name": role,
    }


def _profile_role(ctx: ActionContext, profile_arn: str) -> str:
    name = profile_arn.rsplit("/", 1)[-1]
    with aws_call(f"read instance profile {name}"):
        roles = ctx.aws("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
    if not roles:
        raise NotFoundError(f"instance profile {name} has no role")
    return str(roles[0]["RoleName"])


@register_action
class DenyInstanceCredentials(Action[DenyInstanceCredentialsParams]):
    spec = ActionSpec(
        id="iam.deny_instance_credentials",
        phase=Phase.CONTAINMENT,
        title="Deny the node role's credentials delivered to the attacked instance",
        iam_actions=(
            "ec2:DescribeInstances",
            "iam:GetInstanceProfile",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
        ),
        destructive=True,
        reversible=True,
        description="Inline deny on the node role conditioned on ec2:SourceInstanceARN and "
        "aws:ec2InstanceSourceVPC/PrivateIPv4; other nodes on the role keep working.",
    )
    params_type = DenyInstanceCredentialsParams

    def _desired(self, facts: dict[str, Any]) -> dict[str, Any]:
        return instance_deny_document(facts["instance_arn"], facts["vpc_id"], facts["private_ip"])

    def check(self, ctx: ActionContext, params: DenyInstanceCredentialsParams) -> CheckOutcome:
        try:
            facts = instance_facts(ctx, params)
            current = read_inline(ctx, "role", facts["role_name"], policy_name(params.instance_id))
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        return CheckOutcome(
            ok=True,
            detail=f"node role {facts['role_name']} of {facts['instance_arn']}",
            warnings=(KUBELET_WARNING,),
            already_applied=current == self._desired(facts),
        )

    def plan(self, ctx: ActionContext, params: DenyInstanceCredentialsParams) -> PlannedChange:
        facts = instance_facts(ctx, params)
        name = policy_name(params.instance_id)
        return PlannedChange(
            summary=f"Put inline policy {name} on node role {facts['role_name']}: deny credentials "
            f"delivered to {facts['instance_arn']} (ec2:SourceInstanceARN; VPC {facts['vpc_id']}, "
            f"IP {facts['private_ip']})",
            diff=(
                f"role {facts['role_name']} inline policy {name}:",
                "- (no policy)",
                f"+ Deny * when ec2:SourceInstanceARN = {facts['instance_arn']}",
                f"+ Deny * when aws:ec2InstanceSourceVPC = {facts['vpc_id']} and "
                f"aws:ec2InstanceSourcePrivateIPv4 = {facts['private_ip']}",
            ),
            blast_radius=(
                f"the instance {params.instance_id} loses AWS access (SSM agent, VPC CNI, ECR pulls using "
                "the node role): this is why it runs only after capture is verified",
                f"other nodes on role {facts['role_name']} keep working",
            ),
            warnings=(KUBELET_WARNING,),
        )

    def apply(self, ctx: ActionContext, params: DenyInstanceCredentialsParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        facts = instance_facts(ctx, params)
        name = policy_name(params.instance_id)
        previous = read_inline(ctx, "role", facts["role_name"], name)
        desired = self._desired(facts)
        if previous != desired:
            put_inline(ctx, "role", facts["role_name"], name, desired)
        return {**facts, "policy_name": name, "previous_policy": previous, "policy": desired}

    def verify(
        self, ctx: ActionContext, params: DenyInstanceCredentialsParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        current = read_inline(ctx, "role", applied["role_name"], applied["policy_name"])
        ok = current is not None and current == applied["policy"]
        detail = (
            f"node role {applied['role_name']} denies credentials of {applied['instance_arn']}"
            if ok
            else f"{applied['policy_name']} on {applied['role_name']} is missing or differs"
        )
        return VerifyOutcome(ok=ok, detail=f"{detail}; {KUBELET_WARNING}", observed={"policy": current})

    def rollback(
        self, ctx: ActionContext, params: DenyInstanceCredentialsParams, applied: dict[str, Any]
    ) -> None:
        require_live(ctx, self.spec)
        restore_inline(
            ctx, "role", applied["role_name"], applied["policy_name"], applied.get("previous_policy")
        )
