"""Which EKS OIDC identity provider config let an OIDC user in.

Why: an OIDC user has no AWS principal; containment happens at the identity provider (disable the user,
revoke its tokens) and in RBAC. The config tells the responder which issuer and client to go to. EKS prefixes
usernames with `usernamePrefix`; when none is set and the claim is not `email`, Kubernetes prefixes with
`<issuerUrl>#`, and `-` disables prefixing. The config whose effective prefix the username starts with is
the one; with a single config and no prefix it is the only candidate.
"""

from __future__ import annotations

from typing import Any

from eksir.clients.aws import aws_call
from eksir.models.finding import Actor
from eksir.models.resolution import IdentityMapping, MappingSource
from eksir.resolve.pages import paged


def oidc_mappings(eks: Any, cluster: str, actor: Actor) -> list[IdentityMapping]:
    """OIDC identity provider configs whose username prefix matches the actor.

    Raises the eksir errors of `aws_call`; the caller decides whether that is fatal.
    """
    with aws_call(f"list identity provider configs of {cluster}"):
        refs = list(paged(eks.list_identity_provider_configs, "identityProviderConfigs", clusterName=cluster))
    configs: list[dict[str, Any]] = []
    for ref in refs:
        if ref.get("type") != "oidc" or not ref.get("name"):
            continue
        with aws_call(f"describe identity provider config {ref['name']}"):
            answer = eks.describe_identity_provider_config(
                clusterName=cluster, identityProviderConfig={"type": "oidc", "name": ref["name"]}
            )
        configs.append((answer.get("identityProviderConfig") or {}).get("oidc") or {})
    username = actor.username or ""
    matches = [c for c in configs if (p := effective_prefix(c)) and username.startswith(p)]
    if not matches and len(configs) == 1 and not effective_prefix(configs[0]):
        matches = configs
    return [
        IdentityMapping(
            source=MappingSource.OIDC_PROVIDER,
            username=actor.username,
            groups=actor.groups,
            detail=(
                f"identity provider config {c.get('identityProviderConfigName', '?')}: issuer "
                f"{c.get('issuerUrl', '?')}, client {c.get('clientId', '?')}, username claim "
                f"{c.get('usernameClaim', 'sub')}; disable the user and revoke its tokens at the "
                "identity provider"
            ),
        )
        for c in matches
    ]


def effective_prefix(config: dict[str, Any]) -> str:
    """The prefix the API server puts before the username claim of this config."""
    prefix = config.get("usernamePrefix")
    if prefix == "-":
        return ""
    if prefix:
        return str(prefix)
    claim = config.get("usernameClaim") or "sub"
    return "" if claim == "email" else f"{config.get('issuerUrl', '')}#"
