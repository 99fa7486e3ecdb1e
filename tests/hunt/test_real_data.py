"""Classification and reading against real third-party captures (Stratus Red Team, Falco, Panther)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from eksir.hunt.classify import load_rules
from eksir.hunt.principals import PrincipalSet
from eksir.hunt.run import HuntOptions, run_hunt
from eksir.hunt.window import TimeWindow

WIDE = TimeWindow.parse("2015-01-01", "2030-01-01")

# technique file -> (key call, the category a responder expects for it)
EXPECTED = {
    "credential-access.ec2-get-password-data": ("GetPasswordData", "data-access"),
    "credential-access.ec2-steal-instance-credentials": ("SendCommand", "execution"),
    "credential-access.secretsmanager-batch-retrieve-secrets": ("BatchGetSecretValue", "data-access"),
    "credential-access.secretsmanager-retrieve-secrets": ("GetSecretValue", "data-access"),
    "credential-access.ssm-retrieve-securestring-parameters": ("GetParameters", "data-access"),
    "defense-evasion.cloudtrail-delete": ("DeleteTrail", "defense-evasion"),
    "defense-evasion.cloudtrail-event-selectors": ("PutEventSelectors", "defense-evasion"),
    "defense-evasion.cloudtrail-stop": ("StopLogging", "defense-evasion"),
    "defense-evasion.dns-delete-logs": ("DeleteResolverQueryLogConfig", "defense-evasion"),
    "defense-evasion.organizations-leave": ("LeaveOrganization", "defense-evasion"),
    "defense-evasion.vpc-remove-flow-logs": ("DeleteFlowLogs", "defense-evasion"),
    "discovery.ec2-download-user-data": ("DescribeInstanceAttribute", "data-access"),
    "execution.ec2-launch-unusual-instances": ("RunInstances", "resource-creation"),
    "execution.ec2-user-data": ("ModifyInstanceAttribute", "execution"),
    "execution.ssm-send-command": ("SendCommand", "execution"),
    "execution.ssm-start-session": ("StartSession", "execution"),
    "exfiltration.ec2-security-group-open-port-22-ingress": ("AuthorizeSecurityGroupIngress", "modification"),
    "exfiltration.ec2-share-ami": ("ModifyImageAttribute", "exfiltration"),
    "exfiltration.ec2-share-ebs-snapshot": ("ModifySnapshotAttribute", "exfiltration"),
    "exfiltration.rds-share-snapshot": ("ModifyDBSnapshotAttribute", "exfiltration"),
    "impact.bedrock-invoke-model": ("InvokeModel", "execution"),
    "initial-access.console-login-without-mfa": ("ConsoleLogin", "authentication"),
    "lateral-movement.ec2-instance-connect": ("SendSSHPublicKey", "execution"),
    "lateral-movement.ec2-serial-console-send-ssh-public-key": ("SendSerialConsoleSSHPublicKey", "execution"),
    "persistence.iam-backdoor-role": ("UpdateAssumeRolePolicy", "identity-persistence"),
    "persistence.iam-backdoor-user": ("CreateAccessKey", "identity-persistence"),
    "persistence.iam-create-admin-user": ("CreateUser", "identity-persistence"),
    "persistence.iam-create-backdoor-role": ("CreateRole", "identity-persistence"),
    "persistence.iam-create-user-login-profile": ("CreateLoginProfile", "identity-persistence"),
    "persistence.lambda-backdoor-function": ("AddPermission20150331v2", "identity-persistence"),
    "persistence.lambda-layer-extension": ("UpdateFunctionConfiguration20150331v2", "identity-persistence"),
    "persistence.lambda-overwrite-code": ("UpdateFunctionCode20150331v2", "identity-persistence"),
    "persistence.rolesanywhere-create-trust-anchor": ("CreateTrustAnchor", "identity-persistence"),
    "persistence.sts-federation-token": ("GetFederationToken", "identity-persistence"),
    "privilege-escalation.iam-update-user-login-profile": ("UpdateLoginProfile", "identity-persistence"),
}


def test_every_stratus_technique_key_call_gets_the_category_a_responder_expects(stratus_dir: Path) -> None:
    book = load_rules("cloudtrail")
    files = {p.name[len("aws.") : -len(".json")]: p for p in stratus_dir.glob("aws.*.json")}
    assert set(files) == set(EXPECTED)
    for technique, (call, category) in EXPECTED.items():
        records = [r for r in orjson.loads(files[technique].read_bytes()) if r["eventName"] == call]
        assert records, technique
        assert {str(book.classify(r).category) for r in records} == {category}, technique


def test_admin_policy_attachment_is_identity_persistence(stratus_dir: Path) -> None:
    records = orjson.loads((stratus_dir / "aws.persistence.iam-create-admin-user.json").read_bytes())
    attach = next(r for r in records if r["eventName"] == "AttachUserPolicy")
    assert load_rules("cloudtrail").classify(attach).category == "identity-persistence"


def test_every_stratus_file_is_read_and_the_attackers_records_are_found(stratus_dir: Path) -> None:
    records = [r for p in sorted(stratus_dir.glob("*.json")) for r in orjson.loads(p.read_bytes())]
    assert len(records) == 310
    keys = {r["userIdentity"]["accessKeyId"] for r in records if r["userIdentity"].get("accessKeyId")}
    console_users = {r["userIdentity"]["arn"] for r in records if not r["userIdentity"].get("accessKeyId")}
    assert len(console_users) == 1  # the console login carries no access key: hunted by user ARN
    result = run_hunt(
        PrincipalSet.from_values(sorted(keys | console_users)),
        [str(stratus_dir)],
        WIDE,
        options=HuntOptions(workers=1, count_events=True),
    )
    assert result.skipped == []
    assert result.sources[0].files == 35
    assert result.sources[0].events_scanned == 310
    assert len(result.events) == 310
    failed = [e for e in result.events if e.failed]
    assert len([e for e in failed if e.error_code == "Client.UnauthorizedOperation"]) == 46


def test_federation_token_chains_to_the_federated_user(stratus_dir: Path) -> None:
    source = stratus_dir / "aws.persistence.sts-federation-token.json"
    result = run_hunt(PrincipalSet.from_values(["AKIA6V1GNZTT65XQH36M"]), [str(source)], WIDE)
    assert "ASIASTJKC5GCM7ZE6LUP" in result.chained_principals
    assert "arn:aws:sts::742491224508:federated-user/stratus_red_team" in result.chained_principals


def test_audit_rules_flag_falco_privileged_host_exec_and_rbac_events(k8s_audit_dir: Path) -> None:
    book = load_rules("kubernetes")
    falco = k8s_audit_dir / "falco-trace-files"

    def category(name: str) -> str:
        line = (falco / name).read_text().splitlines()[0]
        return str(book.classify(json.loads(line)).category)

    assert category("create_nginx_pod_privileged.json") == "privileged-workload"
    assert category("create_nginx_pod_privileged_2nd_container.json") == "privileged-workload"
    assert category("create_nginx_pod_hostnetwork.json") == "host-access"
    assert category("create_nginx_pod_sensitive_mount.json") == "host-access"
    assert category("exec_pod.json") == "pod-exec"
    assert category("attach_pod.json") == "pod-exec"
    assert category("attach_cluster_admin_role.json") == "rbac-change"
    assert category("create_nginx_pod_unprivileged.json") == "resource-creation"


@pytest.mark.parametrize(
    ("line_test", "category"),
    [
        (lambda e: e.get("objectRef", {}).get("subresource") == "exec", "pod-exec"),
        (
            lambda e: e.get("objectRef", {}).get("subresource") == "token" and e.get("verb") == "create",
            "token-request",
        ),
        (
            lambda e: (
                e.get("objectRef", {}).get("resource") == "certificatesigningrequests"
                and e.get("verb") == "create"
            ),
            "certificate-request",
        ),
        (
            lambda e: (
                e.get("objectRef", {}).get("resource") == "secrets" and e.get("verb") in ("get", "list")
            ),
            "secret-access",
        ),
        (
            lambda e: any(
                c.get("securityContext", {}).get("privileged") is True
                for c in (e.get("requestObject") or {}).get("spec", {}).get("containers", [])
            ),
            "privileged-workload",
        ),
    ],
)
def test_audit_rules_classify_panther_eks_events(
    k8s_audit_dir: Path, line_test: object, category: str
) -> None:
    book = load_rules("kubernetes")
    lines = (k8s_audit_dir / "panther-analysis_eks-audit-test-events.jsonl").read_text().splitlines()
    events = [e for e in map(json.loads, lines) if callable(line_test) and line_test(e)]
    assert events
    assert {str(book.classify(e).category) for e in events} == {category}


def test_audit_hunt_matches_the_kubernetes_user_across_schema_generations(k8s_audit_dir: Path) -> None:
    result = run_hunt(
        PrincipalSet.from_values(["k8s:system:serviceaccount:kube-system:replicaset-controller"]),
        [],
        WIDE,
        options=HuntOptions(audit_logs=(k8s_audit_dir / "falco-trace-files",)),
    )
    assert result.events
    assert {e.principal for e in result.events} == {"system:serviceaccount:kube-system:replicaset-controller"}
    assert "privileged-workload" in {e.category for e in result.events}
    assert all(e.origin == "kubernetes" for e in result.events)
