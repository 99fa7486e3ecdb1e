"""Issue 14 item 5: resolving an identity through EKS access entries, OIDC identity-provider configs and Pod
Identity associations.

moto 5.2 implements none of these APIs (docs/moto-notes.md: access entries and Pod Identity are missing; its
identity-provider configs exist but the point here is the exact requests), so each test uses botocore's
Stubber: every request is checked against the real EKS service model and the expected parameters, and every
canned response is validated against the model's output shape before it is returned. `assert_no_pending_
responses` proves each call the test expected was made, and an unexpected call fails the test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from eksir.models.finding import Actor, ActorKind
from eksir.models.resolution import ClusterInfo, MappingSource
from eksir.resolve.context import Ctx
from eksir.resolve.identity import resolve_actor
from eksir.resolve.kube import KubeReader
from eksir.resolve.mappings import access_entry_mappings
from eksir.resolve.oidc import oidc_mappings
from eksir.resolve.owners import OwnerCache
from eksir.resolve.principal import Principal
from eksir.resolve.workload_identity import pod_identity_mappings

CLUSTER = "prod-eks"
ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops/deployer"  # with a path: access entries keep it
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _eks() -> tuple[Any, Stubber]:
    client = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name="eu-west-1"
    ).client("eks")
    return client, Stubber(client)


def _entry(arn: str, groups: list[str], username: str) -> dict[str, Any]:
    return {
        "clusterName": CLUSTER,
        "principalArn": arn,
        "kubernetesGroups": groups,
        "accessEntryArn": f"arn:aws:eks:eu-west-1:{ACCOUNT}:access-entry/{CLUSTER}/role/{ACCOUNT}/x/1",
        "createdAt": NOW,
        "modifiedAt": NOW,
        "tags": {},
        "username": username,
        "type": "STANDARD",
    }


def _stub_access_entries(stub: Stubber) -> None:
    other = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    stub.add_response(
        "list_access_entries", {"accessEntries": [other], "nextToken": "p2"}, {"clusterName": CLUSTER}
    )
    stub.add_response(
        "list_access_entries", {"accessEntries": [ROLE]}, {"clusterName": CLUSTER, "nextToken": "p2"}
    )
    stub.add_response(
        "describe_access_entry",
        {"accessEntry": _entry(ROLE, ["deployers"], "deployer:{{SessionName}}")},
        {"clusterName": CLUSTER, "principalArn": ROLE},
    )
    policies = {
        "clusterName": CLUSTER,
        "principalArn": ROLE,
        "associatedAccessPolicies": [
            {
                "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
                "accessScope": {"type": "namespace", "namespaces": ["payments", "shop"]},
                "associatedAt": NOW,
                "modifiedAt": NOW,
            }
        ],
    }
    stub.add_response(
        "list_associated_access_policies", policies, {"clusterName": CLUSTER, "principalArn": ROLE}
    )


def test_an_access_entry_is_found_across_pages_by_principal_ignoring_the_path_with_its_policies() -> None:
    eks, stub = _eks()
    _stub_access_entries(stub)
    principal = Principal(f"arn:aws:iam::{ACCOUNT}:role/deployer", "role", "deployer", "jane")
    with stub:
        [mapping] = access_entry_mappings(eks, CLUSTER, principal)
        stub.assert_no_pending_responses()
    assert mapping.source is MappingSource.ACCESS_ENTRY
    assert mapping.principal_arn == ROLE
    assert mapping.groups == ("deployers",)
    assert mapping.username == "deployer:{{SessionName}}"
    assert mapping.access_policies == ("arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",)
    assert "AmazonEKSEditPolicy (namespaces payments, shop)" in mapping.detail


def _ctx(eks: Any, iam: Any, mode: str | None) -> Ctx:
    def aws(service: str) -> Any:
        return {"eks": eks, "iam": iam}[service]

    cluster = ClusterInfo(name=CLUSTER, authentication_mode=mode)
    kube = KubeReader(None)  # API mode: aws-auth is never read, so no API server is needed
    return Ctx(aws=aws, kube=kube, cluster=cluster, owners=OwnerCache(kube))


def _role_actor() -> Actor:
    return Actor(
        kind=ActorKind.IAM_ROLE,
        username=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/jane",
        access_key_id="ASIAEXAMPLE",
        principal_id="AROAEXAMPLE:jane",
        session_name="jane",
    )


def test_on_an_api_mode_cluster_the_actor_is_resolved_through_its_access_entry_only() -> None:
    eks, stub = _eks()
    _stub_access_entries(stub)
    iam = boto3.session.Session(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x").client(
        "iam", region_name="us-east-1"
    )
    iam_stub = Stubber(iam)  # the role's real ARN (with its path) from the ARN in the Kubernetes username
    role = {"Path": "/ops/", "RoleName": "deployer", "RoleId": "AROAEXAMPLE000000001", "Arn": ROLE}
    role["CreateDate"] = NOW
    iam_stub.add_response("get_role", {"Role": role}, {"RoleName": "deployer"})
    with stub, iam_stub:
        actor = resolve_actor(_ctx(eks, iam, "API"), _finding(_role_actor()))
        stub.assert_no_pending_responses()
        iam_stub.assert_no_pending_responses()
    assert actor.principal_arn == ROLE
    assert [m.source for m in actor.mappings] == [MappingSource.ACCESS_ENTRY]


def _finding(actor: Actor) -> Any:
    class _F:  # resolve_actor reads only `.actor`
        pass

    finding = _F()
    finding.actor = actor  # type: ignore[attr-defined]
    return finding


def test_an_oidc_user_is_traced_to_the_config_whose_username_prefix_it_carries() -> None:
    eks, stub = _eks()
    refs = [{"type": "oidc", "name": "okta"}, {"type": "oidc", "name": "github"}]
    stub.add_response(
        "list_identity_provider_configs", {"identityProviderConfigs": refs}, {"clusterName": CLUSTER}
    )
    for name, prefix in (("okta", "okta:"), ("github", "gh:")):
        config = {
            "identityProviderConfigName": name,
            "identityProviderConfigArn": f"arn:aws:eks:eu-west-1:{ACCOUNT}:identityproviderconfig/{name}",
            "clusterName": CLUSTER,
            "issuerUrl": f"https://{name}.example.com",
            "clientId": f"{name}-client",
            "usernameClaim": "email",
            "usernamePrefix": prefix,
            "status": "ACTIVE",
        }
        stub.add_response(
            "describe_identity_provider_config",
            {"identityProviderConfig": {"oidc": config}},
            {"clusterName": CLUSTER, "identityProviderConfig": {"type": "oidc", "name": name}},
        )
    actor = Actor(kind=ActorKind.OIDC_USER, username="okta:mallory@example.com", groups=("okta:admins",))
    with stub:
        [mapping] = oidc_mappings(eks, CLUSTER, actor)
        stub.assert_no_pending_responses()
    assert mapping.source is MappingSource.OIDC_PROVIDER
    assert (
        "identity provider config okta: issuer https://okta.example.com, client okta-client" in mapping.detail
    )
    assert mapping.groups == ("okta:admins",)


def test_a_service_accounts_pod_identity_association_names_the_role_the_target_and_the_owning_add_on() -> (
    None
):
    eks, stub = _eks()
    summary = {
        "clusterName": CLUSTER,
        "namespace": "payments",
        "serviceAccount": "api",
        "associationArn": f"arn:aws:eks:eu-west-1:{ACCOUNT}:podidentityassociation/{CLUSTER}/a-1",
        "associationId": "a-1",
        "ownerArn": f"arn:aws:eks:eu-west-1:{ACCOUNT}:addon/{CLUSTER}/vpc-cni/1",
    }
    stub.add_response(
        "list_pod_identity_associations",
        {"associations": [summary]},
        {"clusterName": CLUSTER, "namespace": "payments", "serviceAccount": "api"},
    )
    association = {
        "clusterName": CLUSTER,
        "namespace": "payments",
        "serviceAccount": "api",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/payments-api",
        "associationArn": summary["associationArn"],
        "associationId": "a-1",
        "targetRoleArn": "arn:aws:iam::444455556666:role/ledger-writer",
        "createdAt": NOW,
        "modifiedAt": NOW,
    }
    stub.add_response(
        "describe_pod_identity_association",
        {"association": association},
        {"clusterName": CLUSTER, "associationId": "a-1"},
    )
    with stub:
        [mapping] = pod_identity_mappings(eks, CLUSTER, "payments", "api")
        stub.assert_no_pending_responses()
    assert mapping.source is MappingSource.POD_IDENTITY
    assert mapping.principal_arn == f"arn:aws:iam::{ACCOUNT}:role/payments-api"
    assert mapping.username == "system:serviceaccount:payments:api"
    assert "chains to target role arn:aws:iam::444455556666:role/ledger-writer" in mapping.detail
    assert "owned by EKS add-on" in mapping.detail
    assert "revoke older sessions" in mapping.detail
