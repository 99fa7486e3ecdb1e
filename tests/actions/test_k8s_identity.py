"""Kubernetes identity containment against the real kube-apiserver: aws-auth, user and service-account
bindings, and the secrets worklist. kube-system/aws-auth is shared by the session: the fixture saves and
restores whatever was there."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from eksir.actions.base import ActionContext
from eksir.actions.containment.k8s_aws_auth import AwsAuthEntryParams, RemoveAwsAuthEntry
from eksir.actions.containment.k8s_identity import (
    RemoveUserBindings,
    RevokeServiceAccountGrants,
    ServiceAccountParams,
    UserBindingsParams,
)
from eksir.actions.containment.k8s_secrets import SecretsWorklist, SecretsWorklistParams
from eksir.errors import RefusedError
from eksir.lab.controlplane import ControlPlane, create_namespace
from tests.actions.conftest import make_ctx
from tests.actions.test_k8s_node import restricted_client

pytestmark = pytest.mark.lab
RBAC = "rbac.authorization.k8s.io"
ATTACKER = "arn:aws:iam::111122223333:role/attacker"
MAP_ROLES = """# managed by terraform
- rolearn: arn:aws:iam::111122223333:role/eks-node-group
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
- rolearn: arn:aws:iam::111122223333:role/attacker
  username: attacker
  groups:
    - system:masters
# ops team, keep
- rolearn: arn:aws:iam::111122223333:role/ops
  username: ops:{{SessionName}}
  groups: [ops]
"""
MAP_USERS = "- userarn: arn:aws:iam::111122223333:user/alice\n  username: alice\n  groups:\n  - devs\n"


@pytest.fixture
def ctx(k8s_admin: ApiClient) -> ActionContext:
    return make_ctx(k8s=lambda: k8s_admin)


def _cm(api: ApiClient) -> dict[str, Any]:
    return dict(
        api.sanitize_for_serialization(CoreV1Api(api).read_namespaced_config_map("aws-auth", "kube-system"))
    )


@pytest.fixture
def aws_auth(k8s_admin: ApiClient) -> Iterator[dict[str, Any]]:
    core = CoreV1Api(k8s_admin)
    try:
        saved: dict[str, Any] | None = _cm(k8s_admin)
        core.delete_namespaced_config_map("aws-auth", "kube-system")
    except ApiException as exc:
        if exc.status != 404:
            raise
        saved = None
    body = {"metadata": {"name": "aws-auth"}, "data": {"mapRoles": MAP_ROLES, "mapUsers": MAP_USERS}}
    core.create_namespaced_config_map("kube-system", body)
    yield _cm(k8s_admin)
    try:
        core.delete_namespaced_config_map("aws-auth", "kube-system")
    except ApiException as exc:
        if exc.status != 404:
            raise
    if saved is not None:
        meta = {k: v for k, v in saved["metadata"].items() if k in ("name", "labels", "annotations")}
        core.create_namespaced_config_map("kube-system", {**saved, "metadata": meta})


ROLE_PARAMS = AwsAuthEntryParams(map="mapRoles", arn=ATTACKER, username="attacker")


def test_removing_an_aws_auth_entry_keeps_every_other_byte_and_rollback_restores_it(
    ctx: ActionContext, k8s_admin: ApiClient, aws_auth: dict[str, Any]
) -> None:
    action = RemoveAwsAuthEntry()
    assert action.check(ctx, ROLE_PARAMS).ok
    applied = action.apply(ctx, ROLE_PARAMS)
    data = _cm(k8s_admin)["data"]
    assert "role/attacker" not in data["mapRoles"]
    assert data["mapRoles"] == MAP_ROLES.replace(
        "- rolearn: arn:aws:iam::111122223333:role/attacker\n  username: attacker\n  groups:\n"
        "    - system:masters\n",
        "",
    )
    assert data["mapUsers"] == MAP_USERS
    assert [e["rolearn"].rsplit("/", 1)[-1] for e in yaml.safe_load(data["mapRoles"])] == [
        "eks-node-group",
        "ops",
    ]
    assert applied["backup"]["data"]["mapRoles"] == MAP_ROLES
    assert action.verify(ctx, ROLE_PARAMS, applied).ok
    version = _cm(k8s_admin)["metadata"]["resourceVersion"]
    again = action.apply(ctx, ROLE_PARAMS)
    assert again["removed"] == applied["removed"]
    assert _cm(k8s_admin)["metadata"]["resourceVersion"] == version
    action.rollback(ctx, ROLE_PARAMS, applied)
    restored = _cm(k8s_admin)
    assert restored["data"] == {"mapRoles": MAP_ROLES, "mapUsers": MAP_USERS}
    assert not restored["metadata"].get("annotations")
    assert not action.verify(ctx, ROLE_PARAMS, applied).ok


class RacingClient(ApiClient):
    """A real client that lets another writer change aws-auth right after eksir's first read of it."""

    def __init__(self, admin: ApiClient, race: Callable[[], None]) -> None:
        super().__init__(admin.configuration)
        self.race, self.raced = race, 0

    def call_api(self, resource_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        result = super().call_api(resource_path, method, *args, **kwargs)
        if method == "GET" and "configmaps" in resource_path and not self.raced:
            self.raced += 1
            self.race()
        return result


def test_a_concurrent_aws_auth_change_gives_409_and_is_kept_after_a_re_read(
    k8s_admin: ApiClient, aws_auth: dict[str, Any]
) -> None:
    extra = MAP_USERS + "- userarn: arn:aws:iam::111122223333:user/bob\n  username: bob\n"

    def race() -> None:
        CoreV1Api(k8s_admin).patch_namespaced_config_map(
            "aws-auth", "kube-system", {"data": {"mapUsers": extra}}
        )

    racing = RacingClient(k8s_admin, race)
    ctx = make_ctx(k8s=lambda: racing)
    applied = RemoveAwsAuthEntry().apply(ctx, ROLE_PARAMS)
    data = _cm(k8s_admin)["data"]
    assert racing.raced == 1
    assert data["mapUsers"] == extra
    assert "role/attacker" not in data["mapRoles"]
    RemoveAwsAuthEntry().rollback(ctx, ROLE_PARAMS, applied)
    assert _cm(k8s_admin)["data"] == {"mapRoles": MAP_ROLES, "mapUsers": extra}


def test_node_group_mappings_are_refused_and_bad_params_rejected(
    ctx: ActionContext, k8s_admin: ApiClient, aws_auth: dict[str, Any]
) -> None:
    node = AwsAuthEntryParams(map="mapRoles", arn="arn:aws:iam::111122223333:role/eks-node-group")
    assert not RemoveAwsAuthEntry().check(ctx, node).ok
    with pytest.raises(RefusedError):
        RemoveAwsAuthEntry().apply(ctx, node)
    assert _cm(k8s_admin)["data"]["mapRoles"] == MAP_ROLES
    for bad in (
        {"map": "mapUsers", "arn": ATTACKER},
        {"map": "mapAccounts", "arn": ATTACKER},
        {"map": "mapRoles", "arn": "attacker; rm -rf /"},
        {"map": "mapRoles", "arn": ATTACKER, "force": True},
    ):
        with pytest.raises(ValidationError):
            AwsAuthEntryParams.model_validate(bad)


def test_a_role_arn_with_a_path_or_a_session_matches_the_path_less_entry(
    ctx: ActionContext, k8s_admin: ApiClient, aws_auth: dict[str, Any]
) -> None:
    params = AwsAuthEntryParams(map="mapRoles", arn="arn:aws:sts::111122223333:assumed-role/attacker/i-0abc")
    RemoveAwsAuthEntry().apply(ctx, params)
    assert "role/attacker" not in _cm(k8s_admin)["data"]["mapRoles"]


def _role(api: ApiClient, namespace: str, name: str, rules: list[dict[str, Any]]) -> None:
    RbacAuthorizationV1Api(api).create_namespaced_role(
        namespace, {"metadata": {"name": name}, "rules": rules}
    )


def _binding(
    api: ApiClient, namespace: str | None, name: str, role: str, subjects: list[dict[str, Any]]
) -> None:
    rbac = RbacAuthorizationV1Api(api)
    kind = "Role" if namespace else "ClusterRole"
    body = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
        "subjects": subjects,
    }
    if namespace:
        rbac.create_namespaced_role_binding(namespace, body)
    else:
        rbac.create_cluster_role_binding(body)


def _user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def _group(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def _subjects(api: ApiClient, namespace: str | None, name: str) -> list[dict[str, Any]] | None:
    rbac = RbacAuthorizationV1Api(api)
    try:
        found = (
            rbac.read_namespaced_role_binding(name, namespace)
            if namespace
            else rbac.read_cluster_role_binding(name)
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return list(api.sanitize_for_serialization(found).get("subjects") or [])


@pytest.fixture
def user_world(k8s_admin: ApiClient, k8s_namespace: str) -> Iterator[dict[str, Any]]:
    """An attacker user bound in a shared and a solo RoleBinding, via a group in a ClusterRoleBinding, and
    in a `system:` binding eksir must not touch."""
    tag = uuid.uuid4().hex[:8]
    ns, user, group = k8s_namespace, f"oidc:mallory-{tag}", f"devs-{tag}"
    crb, system_crb = f"eksir-t-{tag}", f"system:eksir-t-{tag}"
    _role(k8s_admin, ns, "pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    _binding(k8s_admin, ns, "shared", "pod-reader", [_user(user), _user("alice")])
    _binding(k8s_admin, ns, "solo", "pod-reader", [_user(user)])
    _binding(k8s_admin, None, crb, "view", [_group(group), _user("bob"), _group("system:masters")])
    _binding(k8s_admin, None, system_crb, "view", [_user(user)])
    world = {"ns": ns, "user": user, "group": group, "crb": crb, "system_crb": system_crb}
    world["before"] = {
        key: _subjects(k8s_admin, where, name)
        for key, where, name in (
            ("shared", ns, "shared"),
            ("solo", ns, "solo"),
            ("crb", None, crb),
            ("sys", None, system_crb),
        )
    }
    yield world
    for name in (crb, system_crb):
        try:
            RbacAuthorizationV1Api(k8s_admin).delete_cluster_role_binding(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _user_params(world: dict[str, Any]) -> UserBindingsParams:
    return UserBindingsParams(
        username=world["user"], groups=[world["group"], "system:masters", "system:authenticated"]
    )


def test_user_subjects_are_cut_from_bindings_others_kept_and_rollback_restores_them_exactly(
    ctx: ActionContext, k8s_admin: ApiClient, user_world: dict[str, Any]
) -> None:
    w, action, params = user_world, RemoveUserBindings(), _user_params(user_world)
    plan = action.plan(ctx, params)
    assert any("identity provider" in warning for warning in plan.warnings)
    applied = action.apply(ctx, params)
    assert _subjects(k8s_admin, w["ns"], "shared") == [_user("alice")]
    assert _subjects(k8s_admin, w["ns"], "solo") is None
    assert _subjects(k8s_admin, None, w["crb"]) == [_user("bob"), _group("system:masters")]
    assert _subjects(k8s_admin, None, w["system_crb"]) == [_user(w["user"])]
    assert {g["group"] for g in applied["groups_skipped"]} == {"system:masters", "system:authenticated"}
    assert "identity provider" in applied["idp_action"]
    assert action.verify(ctx, params, applied).ok
    second = action.apply(ctx, params)
    assert second["bindings"] == []
    action.rollback(ctx, params, applied)
    after = {
        "shared": _subjects(k8s_admin, w["ns"], "shared"),
        "solo": _subjects(k8s_admin, w["ns"], "solo"),
        "crb": _subjects(k8s_admin, None, w["crb"]),
        "sys": _subjects(k8s_admin, None, w["system_crb"]),
    }
    assert after == w["before"]


def test_component_identities_are_refused(ctx: ActionContext) -> None:
    params = UserBindingsParams(username="system:kube-scheduler")
    assert not RemoveUserBindings().check(ctx, params).ok
    with pytest.raises(RefusedError):
        RemoveUserBindings().apply(ctx, params)
    with pytest.raises(ValidationError):
        UserBindingsParams.model_validate({"username": ""})


@pytest.fixture
def sa_world(k8s_admin: ApiClient, k8s_namespace: str) -> Iterator[dict[str, Any]]:
    tag, ns = uuid.uuid4().hex[:8], k8s_namespace
    core = CoreV1Api(k8s_admin)
    for name in ("builder", "other"):
        core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    sa = {"kind": "ServiceAccount", "name": "builder", "namespace": ns}
    _role(
        k8s_admin,
        ns,
        "deployer",
        [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["create"]}],
    )
    _binding(k8s_admin, ns, "deployer", "deployer", [sa, {**sa, "name": "other"}])
    crole = f"eksir-t-jobs-{tag}"
    RbacAuthorizationV1Api(k8s_admin).create_cluster_role(
        {
            "metadata": {"name": crole},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}],
        }
    )
    _binding(k8s_admin, None, crole, crole, [sa])
    for name, owner in (("builder-token", "builder"), ("other-token", "other")):
        annotations = {"kubernetes.io/service-account.name": owner}
        body = {
            "metadata": {"name": name, "annotations": annotations},
            "type": "kubernetes.io/service-account-token",
        }
        core.create_namespaced_secret(ns, body)
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "app-config"}, "stringData": {"password": "hunter2"}}
    )
    yield {"ns": ns, "crb": crole, "sa": sa}
    RbacAuthorizationV1Api(k8s_admin).delete_cluster_role(crole)
    try:
        RbacAuthorizationV1Api(k8s_admin).delete_cluster_role_binding(crole)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _secret_names(api: ApiClient, ns: str) -> list[str]:
    return sorted(s.metadata.name for s in CoreV1Api(api).list_namespaced_secret(ns).items)


def test_service_account_grants_and_legacy_tokens_are_revoked_and_bindings_roll_back(
    ctx: ActionContext, k8s_admin: ApiClient, sa_world: dict[str, Any]
) -> None:
    w, action = sa_world, RevokeServiceAccountGrants()
    params = ServiceAccountParams(namespace=w["ns"], service_account="builder")
    plan = action.plan(ctx, params)
    assert any("NOT restorable" in line for line in plan.diff)
    before = (_subjects(k8s_admin, w["ns"], "deployer"), _subjects(k8s_admin, None, w["crb"]))
    applied = action.apply(ctx, params)
    assert "pods" in applied["could_create_before"]
    assert _subjects(k8s_admin, w["ns"], "deployer") == [{**w["sa"], "name": "other"}]
    assert _subjects(k8s_admin, None, w["crb"]) is None
    assert _secret_names(k8s_admin, w["ns"]) == ["app-config", "other-token"]
    token = applied["deleted_token_secrets"][0]
    assert token["name"] == "builder-token"
    assert "data" not in token
    assert "hunter2" not in repr(applied)
    outcome = action.verify(ctx, params, applied)
    assert outcome.ok, outcome.detail
    assert outcome.observed["can_create"] == []
    assert action.apply(ctx, params)["bindings"] == []
    action.rollback(ctx, params, applied)
    assert (_subjects(k8s_admin, w["ns"], "deployer"), _subjects(k8s_admin, None, w["crb"])) == before
    assert "builder-token" not in _secret_names(k8s_admin, w["ns"])


@pytest.fixture
def second_namespace(k8s_admin: ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    create_namespace(k8s_admin, name)
    yield name
    CoreV1Api(k8s_admin).delete_namespace(name)


def test_the_secrets_worklist_names_exactly_what_the_identity_can_read_without_values(
    ctx: ActionContext, k8s_admin: ApiClient, k8s_namespace: str, second_namespace: str
) -> None:
    core, user = CoreV1Api(k8s_admin), f"oidc:reader-{uuid.uuid4().hex[:6]}"
    for ns in (k8s_namespace, second_namespace):
        for name in ("db-password", "api-key"):
            core.create_namespaced_secret(
                ns, {"metadata": {"name": name}, "stringData": {"v": "s3cr3t-value"}}
            )
    _role(
        k8s_admin,
        k8s_namespace,
        "read-all",
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
    )
    _binding(k8s_admin, k8s_namespace, "read-all", "read-all", [_user(user)])
    one = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["api-key"]}]
    _role(k8s_admin, second_namespace, "read-one", one)
    _binding(k8s_admin, second_namespace, "read-one", "read-one", [_user(user)])
    params = SecretsWorklistParams(username=user, groups=[])
    applied = SecretsWorklist().apply(ctx, params)
    found = {(s["namespace"], s["name"]) for s in applied["secrets"]}
    assert found == {
        (k8s_namespace, "db-password"),
        (k8s_namespace, "api-key"),
        (second_namespace, "api-key"),
    }
    assert applied["namespaces_fully_readable"] == {k8s_namespace: "rbac:list secrets"}
    assert {s["type"] for s in applied["secrets"]} == {"Opaque"}
    assert "s3cr3t" not in repr(applied)
    assert SecretsWorklist().verify(ctx, params, applied).ok


def test_secrets_and_tokens_mounted_on_the_node_join_the_worklist_whatever_the_identity_can_read(
    ctx: ActionContext, k8s_admin: ApiClient, k8s_namespace: str
) -> None:
    """Root on the node reads every mounted Secret: the worklist names them even with no RBAC grant."""
    user = f"oidc:nobody-{uuid.uuid4().hex[:6]}"
    params = SecretsWorklistParams(
        username=user,
        mounted_on_node=[f"{k8s_namespace}/db-password", f"{k8s_namespace}/db-password"],
        node_tokens=["payments/payments-api: payments-api-1: sts.amazonaws.com"],
    )
    applied = SecretsWorklist().apply(ctx, params)
    assert applied["secrets"] == [
        {"namespace": k8s_namespace, "name": "db-password", "type": None, "via": "mounted on the node"}
    ]
    assert applied["node_tokens"] == ["payments/payments-api: payments-api-1: sts.amazonaws.com"]
    assert SecretsWorklist().verify(ctx, params, applied).ok


def test_the_declared_rbac_rules_are_enough_for_every_identity_action(
    control_plane: ControlPlane, k8s_admin: ApiClient, aws_auth: dict[str, Any], user_world: dict[str, Any]
) -> None:
    actions = (RemoveAwsAuthEntry(), RemoveUserBindings(), SecretsWorklist(), RevokeServiceAccountGrants())
    with restricted_client(control_plane, k8s_admin, *actions) as api:
        ctx = make_ctx(k8s=lambda: api)
        runs: list[tuple[Any, Any]] = [
            (actions[0], ROLE_PARAMS),
            (actions[1], _user_params(user_world)),
            (actions[2], SecretsWorklistParams(username=user_world["user"])),
            (actions[3], ServiceAccountParams(namespace=user_world["ns"], service_account="default")),
        ]
        for action, params in runs:
            assert action.check(ctx, params).ok
            action.plan(ctx, params)
            applied = action.apply(ctx, params)
            assert action.verify(ctx, params, applied).ok
            action.rollback(ctx, params, applied)
    assert _cm(k8s_admin)["data"]["mapRoles"] == MAP_ROLES
    assert _subjects(k8s_admin, user_world["ns"], "solo") == user_world["before"]["solo"]
