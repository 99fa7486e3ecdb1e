"""Break a workload role's trust for one service account: a Deny statement added to the trust policy.

Why: revoking a role's older sessions does not stop the next AssumeRoleWithWebIdentity. A projected IRSA
token stolen from the node (root reads every pod's token under /var/lib/kubelet) stays valid at STS until it
expires, even after its pod is gone, because STS checks the signature and expiry only; EKS accepts
service-account tokens up to 90 days old. A Deny on the `<issuer>:sub` of that service account (IRSA), or on
the `kubernetes-namespace`/`kubernetes-service-account` session tags (Pod Identity), stops new sessions for
it while the role's other trusted principals keep working. Reversible: rollback puts the recorded trust
policy back exactly. Every pod of the service account loses AWS access when its current session expires:
that is the blast radius shown for approval.
"""

from __future__ import annotations

import json
from typing import Any, Literal

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
from eksir.actions.containment.casework import K8S_NAME_PATTERN, require_live
from eksir.actions.containment.iam_inline import case_sid, statement_sids
from eksir.actions.registry import register_action
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

SID_PREFIX = "EksirDenySA"
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


class BreakRoleTrustParams(ActionParams):
    role_name: str = Field(min_length=1, max_length=64, pattern=r"^[\w+=,.@-]+$")
    namespace: str = Field(pattern=K8S_NAME_PATTERN)
    service_account: str = Field(pattern=K8S_NAME_PATTERN)
    mechanism: Literal["irsa", "pod-identity"] = "irsa"


def read_trust(ctx: ActionContext, role_name: str) -> dict[str, Any]:
    """The role's trust policy. Raises NotFoundError when the role does not exist."""
    with aws_call(f"read role {role_name}"):
        document = ctx.aws("iam").get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    return json.loads(document) if isinstance(document, str) else dict(document)


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement") or []
    return [found] if isinstance(found, dict) else list(found)


def oidc_providers(document: dict[str, Any]) -> list[str]:
    """Federated principals the role trusts for AssumeRoleWithWebIdentity (the IRSA OIDC providers)."""
    providers: list[str] = []
    for statement in _statements(document):
        federated = (statement.get("Principal") or {}).get("Federated")
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if statement.get("Effect") == "Allow" and federated and "sts:AssumeRoleWithWebIdentity" in actions:
            providers += [federated] if isinstance(federated, str) else list(federated)
    return providers


def deny_statements(document: dict[str, Any], params: BreakRoleTrustParams, sid: str) -> list[dict[str, Any]]:
    """The Deny statement(s) for this service account; [] when the role does not trust the mechanism."""
    subject = f"system:serviceaccount:{params.namespace}:{params.service_account}"
    if params.mechanism == "pod-identity":
        tags = {
            "aws:RequestTag/kubernetes-namespace": params.namespace,
            "aws:RequestTag/kubernetes-service-account": params.service_account,
        }
        statement = {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": {"Service": POD_IDENTITY_SERVICE},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": tags},
        }
        return [statement]
    return [
        {
            "Sid": f"{sid}{index}" if index else sid,
            "Effect": "Deny",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{provider.split('oidc-provider/', 1)[-1]}:sub": subject}},
        }
        for index, provider in enumerate(oidc_providers(document))
    ]


@register_action
class BreakRoleTrust(Action[BreakRoleTrustParams]):
    spec = ActionSpec(
        id="iam.break_role_trust",
        phase=Phase.CONTAINMENT,
        title="Deny a service account in a workload role's trust policy (IRSA / Pod Identity)",
        iam_actions=("iam:GetRole", "iam:UpdateAssumeRolePolicy"),
        destructive=True,
        reversible=True,
        description="Adds a Deny for the service account to the role's trust policy; rollback restores the "
        "recorded document.",
    )
    params_type = BreakRoleTrustParams

    def _desired(self, ctx: ActionContext, params: BreakRoleTrustParams) -> tuple[dict[str, Any], list[Any]]:
        current = read_trust(ctx, params.role_name)
        return current, deny_statements(current, params, case_sid(SID_PREFIX, ctx.case_id))

    def check(self, ctx: ActionContext, params: BreakRoleTrustParams) -> CheckOutcome:
        try:
            current, denies = self._desired(ctx, params)
        except NotFoundError:
            return CheckOutcome(ok=False, detail=f"IAM role {params.role_name} does not exist")
        if not denies:
            return CheckOutcome(
                ok=False, detail=f"role {params.role_name} trusts no OIDC provider (not IRSA)"
            )
        in_place = {d["Sid"] for d in denies} <= statement_sids(current)
        return CheckOutcome(
            ok=True,
            detail=f"role {params.role_name} trusts {params.mechanism} for "
            f"{params.namespace}/{params.service_account}",
            already_applied=in_place,
        )

    def plan(self, ctx: ActionContext, params: BreakRoleTrustParams) -> PlannedChange:
        _, denies = self._desired(ctx, params)
        sa = f"{params.namespace}/{params.service_account}"
        return PlannedChange(
            summary=f"Deny {sa} in the trust policy of role {params.role_name} ({params.mechanism})",
            diff=tuple(f"+ {json.dumps(d, sort_keys=True)}" for d in denies),
            blast_radius=(f"every pod of service account {sa} loses AWS access when its session expires",),
            warnings=(
                "sessions already issued stay valid until they expire: revoke the role's older "
                "sessions too (iam.revoke_role_sessions)",
            ),
        )

    def apply(self, ctx: ActionContext, params: BreakRoleTrustParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        current, denies = self._desired(ctx, params)
        have = statement_sids(current)
        missing = [d for d in denies if d["Sid"] not in have]
        if missing:
            document = {**current, "Statement": [*_statements(current), *missing]}
            with aws_call(f"update the trust policy of role {params.role_name}"):
                ctx.aws("iam").update_assume_role_policy(
                    RoleName=params.role_name, PolicyDocument=json.dumps(document)
                )
        previous = current if missing else None
        return {"role_name": params.role_name, "previous_trust": previous, "deny": denies}

    def verify(
        self, ctx: ActionContext, params: BreakRoleTrustParams, applied: dict[str, Any]
    ) -> VerifyOutcome:
        current = read_trust(ctx, params.role_name)
        wanted = {d["Sid"] for d in applied.get("deny") or []}
        ok = bool(wanted) and wanted <= statement_sids(current)
        sa = f"{params.namespace}/{params.service_account}"
        detail = f"trust of {params.role_name} " + ("denies " if ok else "does not deny ") + sa
        return VerifyOutcome(ok=ok, detail=detail, observed={"trust": current})

    def rollback(self, ctx: ActionContext, params: BreakRoleTrustParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        current = read_trust(ctx, params.role_name)
        previous = applied.get("previous_trust")
        if previous is None:  # resumed apply: remove this case's statements only
            wanted = {d["Sid"] for d in applied.get("deny") or []}
            previous = {
                **current,
                "Statement": [s for s in _statements(current) if s.get("Sid") not in wanted],
            }
        if previous != current:
            with aws_call(f"restore the trust policy of role {params.role_name}"):
                ctx.aws("iam").update_assume_role_policy(
                    RoleName=params.role_name, PolicyDocument=json.dumps(previous)
                )
