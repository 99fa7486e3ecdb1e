"""The playbook contains the credentials root on the node can take, and an IAM user completely (issue 16).

Pure: a finding and a hand-built resolution in, a plan out; every planned step's params validate against its
action's own Params type.
"""

from __future__ import annotations

from datetime import UTC, datetime

from eksir.actions.registry import get_action
from eksir.models.finding import Actor, ActorKind
from eksir.models.resolution import (
    ActorResolution,
    ClusterInfo,
    IdentityMapping,
    InstanceInfo,
    MappingSource,
    NodeInfo,
    NodeServiceAccount,
    PodInfo,
    Resolution,
)
from eksir.playbooks.plan import NoteLevel, Plan
from eksir.playbooks.privileged_container import PlaybookOptions, build_plan
from tests.factories import make_finding

NODE = "ip-10-0-1-23.ec2.internal"
IID = "i-0123456789abcdef0"
PAYMENTS = "arn:aws:iam::123456789012:role/payments-api-irsa"
STOREFRONT = "arn:aws:iam::123456789012:role/storefront-irsa"
CACHE = "arn:aws:iam::123456789012:role/cache-pod-identity"


def _irsa(arn: str, source: MappingSource = MappingSource.IRSA) -> IdentityMapping:
    return IdentityMapping(source=source, principal_arn=arn)


def _resolution(actor: ActorResolution | None = None) -> Resolution:
    accounts = (
        NodeServiceAccount(
            namespace="payments",
            name="payments-api",
            pods=("payments-api-1",),
            roles=(_irsa(PAYMENTS),),
            mounted_secrets=("payments/db-password",),
            projected_tokens=("payments-api-1: sts.amazonaws.com",),
        ),
        NodeServiceAccount(
            namespace="shop",
            name="storefront",
            pods=("storefront-1", "storefront-2"),
            roles=(_irsa(STOREFRONT),),
        ),
        NodeServiceAccount(
            namespace="cache",
            name="redis",
            pods=("redis-0",),
            roles=(_irsa(CACHE, MappingSource.POD_IDENTITY),),
        ),
        NodeServiceAccount(namespace="kube-system", name="coredns", pods=("coredns-1",)),
    )
    return Resolution(
        resolved_at=datetime(2026, 11, 20, 11, 0, tzinfo=UTC),
        cluster=ClusterInfo(name="prod-eks"),
        pod=PodInfo(
            namespace="kube-system",
            name="node-problem-detector-x1",
            uid="6f1d2c3b-aaaa-bbbb-cccc-123456789abc",
            node_name=NODE,
        ),
        node=NodeInfo(name=NODE, instance_id=IID),
        instance=InstanceInfo(instance_id=IID),
        actor=actor or ActorResolution(),
        node_service_accounts=accounts,
        role_users={
            PAYMENTS: ("payments/payments-api", "batch/payments-report"),
            STOREFRONT: ("shop/storefront",),
        },
    )


def _plan(
    actor: Actor | None = None, resolved: ActorResolution | None = None, bucket: str | None = "ir-evidence"
) -> Plan:
    finding = make_finding(**({"actor": actor} if actor else {}))
    options = PlaybookOptions(case_id="eksir-20261120-0001", evidence_bucket=bucket)
    return build_plan(finding, _resolution(resolved), options)


def _by_action(plan: Plan, action_id: str) -> list[dict[str, object]]:
    return [s.params for s in plan.steps if s.action_id == action_id]


def test_every_planned_step_validates_against_its_actions_params() -> None:
    for step in _plan().steps:
        get_action(step.action_id).params_type.model_validate(step.params)


def test_the_node_role_deny_waits_for_the_verified_capture_and_needs_approval() -> None:
    plan = _plan()
    deny = next(s for s in plan.steps if s.action_id == "iam.deny_instance_credentials")
    capture = next(s for s in plan.steps if s.action_id == "ssm.capture_volatile")
    assert deny.params == {"instance_id": IID}
    assert capture.id in deny.depends_on
    assert deny.requires_approval
    assert "kubelet's credentials stay valid until the node is gone" in deny.rationale
    notes = [n.message for n in plan.notes if n.subject == "node credentials"]
    assert any("drain_terminate_node" in n for n in notes)


def test_without_a_capture_the_node_role_deny_follows_isolation_and_says_why() -> None:
    plan = _plan(bucket=None)
    deny = next(s for s in plan.steps if s.action_id == "iam.deny_instance_credentials")
    isolate = next(s for s in plan.steps if s.action_id == "ec2.isolate_instance")
    assert isolate.id in deny.depends_on
    assert any(
        "no volatile capture planned" in n.message for n in plan.notes if n.subject == "node credentials"
    )


def test_every_workload_role_on_the_node_gets_its_own_revocation_with_its_blast_radius() -> None:
    plan = _plan()
    revocations = {str(p["role_name"]): p for p in _by_action(plan, "iam.revoke_role_sessions")}
    assert set(revocations) == {"payments-api-irsa", "storefront-irsa", "cache-pod-identity"}
    assert "issued_before" not in revocations["payments-api-irsa"]  # cutoff taken when applied
    used_by = revocations["payments-api-irsa"]["used_by"]
    assert "payments/payments-api (pods on the attacked node)" in used_by  # type: ignore[operator]
    assert "batch/payments-report (elsewhere in the cluster)" in used_by  # type: ignore[operator]
    steps = [s for s in plan.steps if s.action_id == "iam.revoke_role_sessions"]
    assert all(s.requires_approval for s in steps)
    assert len({s.id for s in steps}) == 3


def test_each_service_account_is_denied_in_its_roles_trust() -> None:
    trusts = _by_action(_plan(), "iam.break_role_trust")
    assert {(p["role_name"], p["namespace"], p["service_account"], p["mechanism"]) for p in trusts} == {
        ("payments-api-irsa", "payments", "payments-api", "irsa"),
        ("storefront-irsa", "shop", "storefront", "irsa"),
        ("cache-pod-identity", "cache", "redis", "pod-identity"),
    }


def test_mounted_secrets_and_tokens_are_in_the_rotation_worklist() -> None:
    notes = [n.message for n in _plan().notes if n.subject == "rotation worklist"]
    assert any("payments/db-password" in n for n in notes)
    assert any("payments-api-1: sts.amazonaws.com" in n for n in notes)


USER = Actor(
    kind=ActorKind.IAM_USER,
    username="kubernetes-admin",
    user_name="eks-admin",
    access_key_id="AKIAIOSFODNN7EXAMPLE",
    user_type="IAMUser",
)
USER_RESOLVED = ActorResolution(
    principal_arn="arn:aws:iam::123456789012:user/eks-admin",
    principal_type="user",
    user_name="eks-admin",
    access_key_id="AKIAIOSFODNN7EXAMPLE",
)


def test_an_iam_user_loses_every_key_its_sessions_and_its_console_password_after_approval() -> None:
    plan = _plan(USER, USER_RESOLVED)
    keys = _by_action(plan, "iam.deactivate_access_key")
    assert keys == [{"user_name": "eks-admin", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "every_key": True}]
    assert _by_action(plan, "iam.revoke_user_sessions") == [
        {"user_name": "eks-admin", "access_key_id": "AKIAIOSFODNN7EXAMPLE"}
    ]
    login = next(s for s in plan.steps if s.action_id == "iam.delete_login_profile")
    assert login.params == {"user_name": "eks-admin"}
    assert login.requires_approval
    assert not get_action("iam.delete_login_profile").spec.reversible


def test_a_temporary_asia_key_is_routed_to_session_revocation_not_key_deactivation() -> None:
    actor = USER.model_copy(update={"access_key_id": "ASIAIOSFODNN7EXAMPLE"})
    resolved = USER_RESOLVED.model_copy(update={"access_key_id": "ASIAIOSFODNN7EXAMPLE"})
    plan = _plan(actor, resolved)
    assert _by_action(plan, "iam.deactivate_access_key") == []
    assert _by_action(plan, "iam.revoke_user_sessions") == [
        {"user_name": "eks-admin", "access_key_id": "ASIAIOSFODNN7EXAMPLE"}
    ]


def test_an_asia_key_of_a_role_session_revokes_the_role() -> None:
    actor = Actor(kind=ActorKind.IAM_ROLE, username="ops", access_key_id="ASIAIOSFODNN7EXAMPLE")
    resolved = ActorResolution(
        principal_arn="arn:aws:iam::123456789012:role/ops-admin", role_name="ops-admin"
    )
    plan = _plan(actor, resolved)
    assert _by_action(plan, "iam.deactivate_access_key") == []
    assert {"role_name": "ops-admin"} in _by_action(plan, "iam.revoke_role_sessions")
    assert any("source principal" in n.message for n in plan.notes if n.subject == "identity")


def test_root_gets_no_key_step_and_a_blocking_note_with_the_runbook() -> None:
    actor = USER.model_copy(update={"user_name": "root", "user_type": "Root"})
    resolved = USER_RESOLVED.model_copy(
        update={"principal_arn": "arn:aws:iam::123456789012:root", "user_name": "root"}
    )
    plan = _plan(actor, resolved)
    assert not [s for s in plan.steps if s.action_id.startswith("iam.") and "user" in str(s.params)]
    blocking = [n.message for n in plan.notes if n.level is NoteLevel.BLOCKING and n.subject == "identity"]
    assert blocking
    assert "root-credential runbook" in blocking[0]


def test_a_node_role_actors_revocation_waits_for_the_capture() -> None:
    actor = Actor(
        kind=ActorKind.EC2_INSTANCE_ROLE, username="system:node:x", access_key_id="ASIAIOSFODNN7EXAMPLE"
    )
    resolved = ActorResolution(
        principal_arn="arn:aws:iam::123456789012:role/node-role", role_name="node-role"
    )
    plan = _plan(actor, resolved)
    revoke = next(
        s
        for s in plan.steps
        if s.action_id == "iam.revoke_role_sessions" and s.params["role_name"] == "node-role"
    )
    capture = next(s for s in plan.steps if s.action_id == "ssm.capture_volatile")
    assert capture.id in revoke.depends_on


def test_the_secrets_worklist_step_carries_every_secret_and_token_mounted_on_the_node() -> None:
    (params,) = _by_action(_plan(), "k8s.secrets_worklist")
    assert params["mounted_on_node"] == ["payments/db-password"]
    assert params["node_tokens"] == ["payments/payments-api: payments-api-1: sts.amazonaws.com"]
