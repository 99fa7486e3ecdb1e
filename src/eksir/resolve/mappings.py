"""How an IAM principal (or OIDC user) is let into the cluster: access entries, aws-auth, creator, OIDC IdP.

Why all of them: containment must remove every path, and they coexist. In `API_AND_CONFIG_MAP` mode an access
entry overrides the aws-auth entry for the same principal, so deleting only the aws-auth line revokes nothing;
on `CONFIG_MAP` clusters the creator is an implicit `system:masters` admin visible nowhere; an OIDC user is
removed at the identity provider, not in AWS. Each mapping found is returned with a `detail` a responder can
act on; lookups that fail become notes, so one missing permission does not hide the other mappings.
"""

from __future__ import annotations

from typing import Any

import yaml

from eksir.clients.aws import aws_call
from eksir.models.finding import Actor
from eksir.models.resolution import IdentityMapping, MappingSource
from eksir.resolve.kube import KubeReader
from eksir.resolve.pages import paged
from eksir.resolve.principal import Principal, parse_arn, same_principal

_AWS_AUTH = "/api/v1/namespaces/kube-system/configmaps/aws-auth"
_AWS_AUTH_KEYS = (
    ("mapRoles", "rolearn", MappingSource.AWS_AUTH_MAP_ROLES),
    ("mapUsers", "userarn", MappingSource.AWS_AUTH_MAP_USERS),
)
CREATOR_USERNAME = "kubernetes-admin"


def access_entry_mappings(eks: Any, cluster: str, principal: Principal) -> list[IdentityMapping]:
    """Access entries for the principal, with their policies (ListAccessEntries -> Describe -> policies).

    Raises the eksir errors of `aws_call`; the caller decides whether that is fatal.
    """
    if principal.arn is None:
        return []
    with aws_call(f"list EKS access entries of {cluster}"):
        arns = [a for a in paged(eks.list_access_entries, "accessEntries", clusterName=cluster)]
    result = []
    for arn in (a for a in arns if same_principal(a, principal.arn)):
        with aws_call(f"describe EKS access entry {arn}"):
            entry = eks.describe_access_entry(clusterName=cluster, principalArn=arn).get("accessEntry") or {}
            policies = list(
                paged(
                    eks.list_associated_access_policies,
                    "associatedAccessPolicies",
                    clusterName=cluster,
                    principalArn=arn,
                )
            )
        scopes = [
            f"{p.get('policyArn', '?').rsplit('/', 1)[-1]} ({_scope(p.get('accessScope') or {})})"
            for p in policies
        ]
        result.append(
            IdentityMapping(
                source=MappingSource.ACCESS_ENTRY,
                principal_arn=arn,
                username=entry.get("username"),
                groups=tuple(entry.get("kubernetesGroups") or ()),
                access_policies=tuple(str(p["policyArn"]) for p in policies if p.get("policyArn")),
                detail=f"access entry type {entry.get('type', '?')}; policies: {', '.join(scopes) or 'none'}",
            )
        )
    return result


def _scope(scope: dict[str, Any]) -> str:
    if scope.get("type") == "namespace":
        return "namespaces " + ", ".join(scope.get("namespaces") or [])
    return str(scope.get("type") or "cluster")


def aws_auth_mappings(
    kube: KubeReader, principal: Principal, actor: Actor, notes: list[str]
) -> list[IdentityMapping]:
    """mapRoles/mapUsers entries of kube-system/aws-auth for the principal (by ARN, else by username).

    Matching by username is only done when the principal is unknown: two principals may share a username.
    Raises UnreachableError, PermissionDeniedError or TemporaryError from the API server.
    """
    config_map = kube.get(_AWS_AUTH, "read ConfigMap kube-system/aws-auth")
    if config_map is None:
        notes.append("ConfigMap kube-system/aws-auth does not exist: no aws-auth mappings")
        return []
    raw_data = config_map.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    result: list[IdentityMapping] = []
    for key, arn_key, source in _AWS_AUTH_KEYS:
        for entry in _yaml_list(data.get(key), key, notes):
            arn = entry.get(arn_key) if isinstance(entry.get(arn_key), str) else None
            username = entry.get("username") if isinstance(entry.get("username"), str) else None
            if same_principal(arn, principal.arn):
                how = "matched by ARN"
            elif principal.arn is None and username and render(username, actor) == actor.username:
                how = "matched by Kubernetes username (the principal ARN is unknown)"
            else:
                continue
            groups = tuple(str(g) for g in entry.get("groups") or [] if isinstance(g, str))
            result.append(
                IdentityMapping(
                    source=source,
                    principal_arn=arn,
                    username=username,
                    groups=groups,
                    detail=_aws_auth_detail(key, how, username),
                )
            )
    _note_map_accounts(data.get("mapAccounts"), principal, notes)
    return result


def _aws_auth_detail(key: str, how: str, username: str | None) -> str:
    detail = f"aws-auth {key} entry, {how}"
    if username and "{{" in username:
        detail += (
            f"; username is the template {username!r}, rendered per session ({{{{SessionName}}}} = the role "
            "session name with '@' -> '-'), so each session appears under another Kubernetes username"
        )
    return detail


def render(template: str, actor: Actor) -> str:
    """Render an aws-auth username template with what the finding knows (EC2PrivateDNSName stays as is)."""
    session = actor.session_name or ""
    account = (actor.uid or "").split(":")[1] if (actor.uid or "").count(":") >= 2 else ""
    return (
        template.replace("{{SessionName}}", session.replace("@", "-"))
        .replace("{{SessionNameRaw}}", session)
        .replace("{{AccessKeyID}}", actor.access_key_id or "")
        .replace("{{AccountID}}", account)
    )


def _yaml_list(text: Any, key: str, notes: list[str]) -> list[dict[str, Any]]:
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        notes.append(
            f"aws-auth {key} is not valid YAML ({str(exc).splitlines()[0]}): its entries were not read"
        )
        return []
    if not isinstance(value, list):
        notes.append(f"aws-auth {key} is not a YAML list: its entries were not read")
        return []
    return [item for item in value if isinstance(item, dict)]


def _note_map_accounts(text: Any, principal: Principal, notes: list[str]) -> None:
    parts = parse_arn(principal.arn)
    if parts is None or not isinstance(text, str):
        return
    try:
        accounts = yaml.safe_load(text) or []
    except yaml.YAMLError:
        return
    if isinstance(accounts, list) and parts.account in {str(a).strip() for a in accounts}:
        notes.append(
            f"aws-auth mapAccounts lists account {parts.account}: every principal of it (not only "
            f"{principal.arn}) can authenticate, with its ARN as username"
        )


def creator_mapping(principal: Principal, actor: Actor, mode: str | None) -> IdentityMapping:
    """The implicit cluster-creator admin (`kubernetes-admin` in `system:masters`)."""
    hidden = mode in (None, "CONFIG_MAP")
    detail = "the cluster creator's built-in system:masters admin: " + (
        "on a CONFIG_MAP cluster it is in neither aws-auth nor access entries and cannot be removed from the "
        "cluster; contain it in IAM (deactivate the key / revoke sessions), then move the cluster to "
        "access entries"
        if hidden
        else "look for its admin access entry (bootstrapClusterCreatorAdminPermissions) and remove that"
    )
    return IdentityMapping(
        source=MappingSource.CLUSTER_CREATOR,
        principal_arn=principal.arn,
        username=actor.username,
        groups=tuple(g for g in actor.groups if g == "system:masters"),
        detail=detail,
    )


def is_creator_admin(actor: Actor) -> bool:
    """The finding's caller is the built-in admin identity the creator (or a legacy mapping) gets."""
    return actor.username == CREATOR_USERNAME and "system:masters" in actor.groups
