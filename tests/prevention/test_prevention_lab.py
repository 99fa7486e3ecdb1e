"""Prevention on the real kube-apiserver: dry run, approved enforcement, replay as the attacker, rollback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from eksir.actions.base import ActionContext
from eksir.actions.prevention.admission_policy import POLICY_NAME
from eksir.actions.prevention.psa import PsaLevel
from eksir.actions.prevention.replay import verdict_text
from eksir.clients.k8s_requests import impersonating
from eksir.engine import ApprovalPolicy, DenyAllGate, PolicyGate, StateStore, StepStatus, rollback
from eksir.engine.runner import ContextFactory
from eksir.engine.tracks import PREVENTION
from eksir.errors import RefusedError
from eksir.lab.controlplane import create_namespace
from eksir.models.finding import Actor, ActorKind, Container, Workload
from eksir.phases.prevention import assess, deny_cluster_wide, enforce, prove, prove_cluster_wide
from eksir.report import generate_report
from eksir.store import verify_case
from tests.cli.helpers import run_eksir
from tests.report.case_builder import build_case

pytestmark = pytest.mark.lab
ATTACKER = "arn:aws:iam::123456789012:user/mallory"


def _privileged_pod(name: str) -> client.V1Pod:
    container = client.V1Container(
        name="shell", image="busybox", security_context=client.V1SecurityContext(privileged=True)
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(node_name="n1", containers=[container])
    )


@pytest.fixture
def incident(k8s_admin, k8s_namespace, tmp_path):
    """The attacker may create pods here (Role + RoleBinding) and already runs one privileged pod."""
    rbac = client.RbacAuthorizationV1Api(k8s_admin)
    rbac.create_namespaced_role(
        k8s_namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-creator"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["create", "get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        k8s_namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="devs-create-pods"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-creator"),
            subjects=[client.RbacV1Subject(kind="Group", name="devs", api_group="rbac.authorization.k8s.io")],
        ),
    )
    client.CoreV1Api(k8s_admin).create_namespaced_pod(k8s_namespace, _privileged_pod("miner"))
    handle = build_case(
        tmp_path / "cases",
        hunt=False,
        steps=False,
        workload=Workload(
            namespace=k8s_namespace,
            name="miner",
            service_account="default",
            containers=(Container(name="shell", image="busybox", privileged=True),),
        ),
        actor=Actor(kind=ActorKind.IAM_USER, username=ATTACKER, groups=("devs", "system:authenticated")),
    )
    return handle, k8s_namespace


APPROVE_ALL = PolicyGate(ApprovalPolicy.ALL, "lead@soc")


def _ctx(handle, api) -> ContextFactory:
    return lambda: ActionContext(
        case_id=handle.load().id, aws=lambda _s: None, k8s=lambda: api, dry_run=False
    )


def test_assessment_names_the_violating_pod_and_the_rbac_grant_without_changing_the_namespace(
    incident, k8s_admin
):
    handle, namespace = incident
    assessment = assess(handle, k8s_admin, PsaLevel.BASELINE)
    assert assessment["violating_pods"] == ["miner"]
    assert "privileged" in assessment["violations"][0]["violations"]
    assert assessment["rbac_grants"] == [
        {
            "binding": f"RoleBinding {namespace}/devs-create-pods",
            "role": "Role/pod-creator",
            "subject": "Group devs",
        }
    ]
    labels = client.CoreV1Api(k8s_admin).read_namespace(namespace).metadata.labels
    assert not any(k.startswith("pod-security.kubernetes.io/") for k in labels)
    for relative in assessment["policies"]:
        document = yaml.safe_load((handle.path / relative).read_text())
        assert document["kind"] in {
            "Namespace",
            "ClusterPolicy",
            "ConstraintTemplate",
            "K8sPSPPrivilegedContainer",
        }
    assert verify_case(handle).ok


def test_before_enforcement_the_replay_is_admitted_and_recorded_as_not_proven(incident, control_plane):
    handle, _ = incident
    attacker = control_plane.identity_api_client(ATTACKER, ["devs", "system:authenticated"])
    proof = prove(handle, attacker)
    assert (proof["status"], proof["result"]) == (201, "admitted")
    assert proof["request"]["dryRun"] == "All"


def test_enforced_labels_make_the_api_server_reject_the_attackers_pod_sent_by_the_responder(
    incident, k8s_admin
):
    handle, namespace = incident
    outcome = enforce(handle, _ctx(handle, k8s_admin), PsaLevel.BASELINE, APPROVE_ALL)
    assert outcome.status is StepStatus.VERIFIED
    assert outcome.approver == "lead@soc"
    proof = prove(handle, k8s_admin)
    assert proof["status"] == 403
    assert proof["result"] == "proven"
    assert 'violates PodSecurity "baseline:latest"' in proof["message"]
    assert proof["identity"]["username"] == ATTACKER
    assert proof["replayed_by"] == "eksir-admin"
    assert proof["request"]["dryRun"] == "All"
    assert client.CoreV1Api(k8s_admin).list_namespaced_pod(namespace).items[0].metadata.name == "miner"
    report, _ = generate_report(handle, ["json"])
    assert report.lessons[-1].finding.startswith("Replaying the attacker's pod creation")
    assert [s.status for s in report.steps_in("post-incident")] == ["verified"]


def test_once_the_attackers_rbac_is_removed_the_responders_replay_still_proves_admission(incident, k8s_admin):
    handle, namespace = incident
    client.RbacAuthorizationV1Api(k8s_admin).delete_namespaced_role_binding("devs-create-pods", namespace)
    enforce(handle, _ctx(handle, k8s_admin), PsaLevel.BASELINE, APPROVE_ALL)
    as_attacker = prove(handle, impersonating(k8s_admin, ATTACKER, ["devs", "system:authenticated"]))
    assert as_attacker["result"] == "denied-by-rbac"
    assert verdict_text(as_attacker).startswith("not proven: RBAC refused the replay (403)")
    by_responder = prove(handle, k8s_admin)
    assert by_responder["result"] == "proven"
    assert verdict_text(by_responder).startswith("proven: Pod Security admission rejected")


def test_prevent_cli_proves_with_the_responders_kubeconfig_after_the_attackers_rbac_is_gone(
    incident, k8s_admin, control_plane
):
    handle, namespace = incident
    client.RbacAuthorizationV1Api(k8s_admin).delete_namespaced_role_binding("devs-create-pods", namespace)
    common = ("--cases-dir", str(handle.path.parent), "--kubeconfig", str(control_plane.admin_kubeconfig))
    unproven = run_eksir("prevent", handle.path.name, "--prove", *common)
    assert unproven.returncode == 9
    assert "eksir: error: prevention not proven: the API server admitted" in unproven.stderr
    proven = run_eksir(
        "prevent", handle.path.name, "--apply", "--prove", "--yes", *common, "--output", "json"
    )
    assert proven.returncode == 0, proven.stderr
    proof = json.loads(proven.stdout)["proof"]
    assert (proof["result"], proof["replayed_by"]) == ("proven", "eksir-admin")
    undone = run_eksir("rollback", handle.path.name, "--track", "prevention", "--yes", *common)
    assert undone.returncode == 0, undone.stderr
    labels = client.CoreV1Api(k8s_admin).read_namespace(namespace).metadata.labels
    assert "pod-security.kubernetes.io/enforce" not in labels


def test_impersonation_replays_as_the_attacker_with_every_group(incident, k8s_admin):
    handle, _ = incident
    enforce(handle, _ctx(handle, k8s_admin), PsaLevel.BASELINE, APPROVE_ALL)
    proof = prove(handle, impersonating(k8s_admin, ATTACKER, ["devs", "system:authenticated"]))
    assert proof["result"] == "proven"


def test_a_caller_without_the_rbac_grant_is_reported_as_denied_by_rbac_not_as_proven(incident, control_plane):
    handle, _ = incident
    outsider = control_plane.identity_api_client(ATTACKER, ["system:authenticated"])
    assert prove(handle, outsider)["result"] == "denied-by-rbac"


def test_declining_approval_changes_nothing(incident, k8s_admin):
    handle, namespace = incident
    with pytest.raises(RefusedError):
        enforce(handle, _ctx(handle, k8s_admin), PsaLevel.RESTRICTED, DenyAllGate())
    labels = client.CoreV1Api(k8s_admin).read_namespace(namespace).metadata.labels
    assert "pod-security.kubernetes.io/enforce" not in labels
    declined = StateStore(handle, PREVENTION).load().steps[f"prevent-psa-{namespace}"]
    assert declined.status is StepStatus.SKIPPED
    assert [e.type for e in handle.log.events() if e.type.startswith("step.")][-1] == "step.skipped"


def test_rollback_restores_exactly_the_previous_labels_even_after_a_second_apply(incident, k8s_admin):
    handle, namespace = incident
    core = client.CoreV1Api(k8s_admin)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/warn": "restricted"}}}
    )
    ctx = _ctx(handle, k8s_admin)
    enforce(handle, ctx, PsaLevel.BASELINE, APPROVE_ALL)
    enforce(handle, ctx, PsaLevel.BASELINE, APPROVE_ALL)  # idempotent, remembers the original
    applied = StateStore(handle, PREVENTION).load().steps[f"prevent-psa-{namespace}"].applied
    assert applied is not None
    assert applied["before"] == {"pod-security.kubernetes.io/warn": "restricted"}
    state = rollback(handle, ctx, f"prevent-psa-{namespace}", track=PREVENTION)
    assert state.steps[f"prevent-psa-{namespace}"].status is StepStatus.ROLLED_BACK
    labels = core.read_namespace(namespace).metadata.labels
    psa = {k: v for k, v in labels.items() if k.startswith("pod-security.kubernetes.io/")}
    assert psa == {"pod-security.kubernetes.io/warn": "restricted"}
    assert "eksir.io/previous-pod-security-labels" not in (
        core.read_namespace(namespace).metadata.annotations or {}
    )


def test_prevent_cli_without_a_cluster_fails_in_one_line(tmp_path: Path):

    handle = build_case(tmp_path / "cases", hunt=False, steps=False)
    result = run_eksir(
        "prevent",
        handle.path.name,
        "--cases-dir",
        str(tmp_path / "cases"),
        "--kubeconfig",
        str(tmp_path / "missing"),
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_the_cluster_wide_policy_refuses_the_attackers_pod_in_another_namespace_by_name(
    incident, k8s_admin, k8s_namespace
):
    """A ValidatingAdmissionPolicy served by the real kube-apiserver: the attacker's pod replayed into another
    namespace is denied and the denial names the policy; namespaces running privileged pods now are exempt;
    rollback deletes what the step created."""
    handle, namespace = incident
    create_namespace(k8s_admin, f"{namespace}-other")  # with its default ServiceAccount, as on EKS
    ctx = _ctx(handle, k8s_admin)
    try:
        step = deny_cluster_wide(handle, k8s_admin, ctx, APPROVE_ALL, probe_namespace=f"{namespace}-other")
        assert step.status is StepStatus.VERIFIED, step.detail
        assert POLICY_NAME in step.detail
        proof = prove_cluster_wide(handle, k8s_admin, f"{namespace}-other")
        assert proof["result"] == "proven", proof
        assert proof["status"] == 403
        assert f"eksir case {handle.load().id}" in proof["message"]
        exempt = StateStore(handle, PREVENTION).load().plan.step(step.step_id).params["exempt_namespaces"]
        assert namespace in exempt  # the miner's namespace runs a privileged pod now (not the attacker's uid)
    finally:
        undone = rollback(handle, ctx, "prevent-cluster-admission-policy", track=PREVENTION)
    assert undone.steps["prevent-cluster-admission-policy"].status is StepStatus.ROLLED_BACK
    deadline = time.monotonic() + 30  # the API server's policy cache drops a deleted policy within seconds
    while (result := prove_cluster_wide(handle, k8s_admin, f"{namespace}-other")["result"]) != "admitted":
        assert time.monotonic() < deadline, result
        time.sleep(0.5)
