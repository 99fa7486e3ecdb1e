"""`eksir doctor` against the lab (real kube-apiserver, moto as a server), as a user runs it.

`eksir doctor` does not know it faces the lab: what the lab truthfully lacks shows as failures with their fix
(no CNI enforces NetworkPolicy; an evidence bucket without Object Lock). The attacker deleted the account's
trail, but the organisation's trail the lab keeps still logs. moto has no SimulatePrincipalPolicy and no SSM
DescribeInstanceInformation: those checks say "skip" here and are tested with botocore's Stubber in
tests/preflight/test_aws_checks.py. `eksir lab doctor` is told it faces the lab: it passes, with what the lab
cannot provide said as `unavailable-in-lab`, and still fails, with the fix, on a removed ClusterRole binding
and on audit logging switched off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import RbacAuthorizationV1Api, V1ClusterRoleBinding, V1ObjectMeta, V1RoleRef
from kubernetes.config import new_client_from_config

from eksir.errors import ExitCode
from eksir.lab import lab as lab_module
from tests.lab_plugin import lab_disabled

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab_module.LabState]:
    if lab_disabled():
        pytest.skip("lab tests skipped on request")
    lab_dir = tmp_path_factory.mktemp("doctor")
    state = lab_module.up(lab_dir, "iam-user", seed=20240611)
    try:
        yield state
    finally:
        lab_module.down(lab_dir)


def doctor(
    state: lab_module.LabState, *extra: str, kubeconfig: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **state.endpoint.env()}
    env.pop("KUBECONFIG", None)
    args = ["--cluster", state.cluster, "--endpoint-url", state.aws_endpoint, "--region", state.region]
    args += ["--kubeconfig", kubeconfig or state.admin_kubeconfig, *extra]
    command = [sys.executable, "-m", "eksir", "doctor", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def test_the_doctor_names_what_works_and_what_the_lab_lacks_with_the_fix(lab: lab_module.LabState) -> None:
    done = doctor(lab, "--evidence-bucket", lab.evidence_bucket, "-o", "json")
    assert done.returncode == ExitCode.STEP_FAILED, done.stderr
    assert done.stderr.startswith("eksir: error: ")
    assert done.stderr.count("\n") == 1
    found = checks(done)
    verdicts = {name: c["verdict"] for name, c in found.items()}
    assert verdicts["aws identity"] == "pass"
    assert verdicts["eks cluster"] == "pass"
    assert lab.cluster in found["eks cluster"]["detail"]
    assert verdicts["kubernetes authentication"] == "pass"
    assert verdicts["kubernetes permissions"] == "pass"  # the lab's admin
    assert verdicts["cloudtrail"] == "pass"  # the attacker deleted the account's trail, not the org's
    assert "org-management-events" in found["cloudtrail"]["detail"]
    assert verdicts["audit logging"] == "pass"
    assert verdicts["networkpolicy enforcement"] == "fail"
    assert "enableNetworkPolicy" in found["networkpolicy enforcement"]["fix"]
    assert verdicts["evidence bucket"] == "pass"  # the lab makes its evidence bucket with Object Lock
    assert verdicts["iam permissions"] == "skip"  # moto has no SimulatePrincipalPolicy
    assert all(c["fix"] for c in found.values() if c["verdict"] == "fail")


def test_an_evidence_bucket_without_object_lock_fails_with_the_fix(lab: lab_module.LabState) -> None:
    lab.endpoint.client("s3").create_bucket(Bucket="eksir-doctor-no-lock")
    found = checks(doctor(lab, "--evidence-bucket", "eksir-doctor-no-lock", "-o", "json"))
    assert found["evidence bucket"]["verdict"] == "fail"
    assert "Object Lock" in found["evidence bucket"]["fix"]
    missing = checks(doctor(lab, "--evidence-bucket", "eksir-doctor-no-such-bucket", "-o", "json"))
    assert missing["evidence bucket"]["verdict"] == "fail"


def test_a_responder_without_the_cluster_role_is_told_which_grants_are_missing(
    lab: lab_module.LabState,
) -> None:
    done = doctor(lab, "-o", "json", kubeconfig=lab.responder_kubeconfig)
    found = checks(done)
    assert found["kubernetes authentication"]["verdict"] == "pass"
    assert "eksir-responder" in found["kubernetes authentication"]["detail"]
    permissions = found["kubernetes permissions"]
    assert permissions["verdict"] == "fail"
    assert "patch nodes" in permissions["detail"]
    assert "eksir permissions" in permissions["fix"]


def test_with_the_emitted_cluster_role_bound_the_permissions_check_passes(lab: lab_module.LabState) -> None:
    env = {**os.environ, **lab.endpoint.env()}
    emitted = subprocess.run(
        [sys.executable, "-m", "eksir", "permissions", "-o", "json", "--role-name", "eksir-doctor-test"],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    admin = new_client_from_config(lab.admin_kubeconfig)
    rbac = RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role(json.loads(emitted.stdout)["cluster_role"])
    binding = V1ClusterRoleBinding(
        metadata=V1ObjectMeta(name="eksir-doctor-test"),
        role_ref=V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="eksir-doctor-test"
        ),
        subjects=[{"kind": "User", "name": "eksir-responder", "apiGroup": "rbac.authorization.k8s.io"}],
    )
    rbac.create_cluster_role_binding(binding)
    try:
        found = checks(doctor(lab, "-o", "json", kubeconfig=lab.responder_kubeconfig))
        assert found["kubernetes permissions"]["verdict"] == "pass", found["kubernetes permissions"]
    finally:
        rbac.delete_cluster_role_binding("eksir-doctor-test")
        rbac.delete_cluster_role("eksir-doctor-test")


def test_an_unreachable_cluster_fails_authentication_and_skips_what_depends_on_it(
    lab: lab_module.LabState, tmp_path: Path
) -> None:
    broken = tmp_path / "kubeconfig"
    text = Path(lab.admin_kubeconfig).read_text().replace(lab.k8s_server, "https://127.0.0.1:1")
    broken.write_text(text)
    found = checks(doctor(lab, "-o", "json", kubeconfig=str(broken)))
    assert found["kubernetes authentication"]["verdict"] == "fail"
    for name in ("kubernetes permissions", "networkpolicy enforcement", "ssm on nodes"):
        assert found[name]["verdict"] == "skip"
        assert found[name]["detail"] == "not authenticated to the cluster"


def lab_doctor(state: lab_module.LabState, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.pop("KUBECONFIG", None)  # `eksir lab doctor` needs nothing but the lab folder
    command = [
        sys.executable,
        "-m",
        "eksir",
        "lab",
        "doctor",
        "--lab-dir",
        state.lab_dir,
        "-o",
        "json",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_lab_doctor_passes_and_says_what_the_lab_cannot_provide_and_why(lab: lab_module.LabState) -> None:
    done = lab_doctor(lab)
    assert done.returncode == 0, done.stderr
    found = checks(done)
    unavailable = {name: c["detail"] for name, c in found.items() if c["verdict"] == "unavailable-in-lab"}
    assert {c["verdict"] for c in found.values()} <= {"pass", "unavailable-in-lab"}
    assert set(unavailable) <= {"networkpolicy enforcement", "iam permissions", "ssm on nodes"}
    assert "networkpolicy enforcement" in unavailable
    assert "no network policy agent" in unavailable["networkpolicy enforcement"]
    assert "SimulatePrincipalPolicy" in unavailable["iam permissions"]
    for name in ("aws identity", "eks cluster", "audit logging", "kubernetes authentication",
                 "kubernetes permissions", "cloudtrail", "evidence bucket"):  # fmt: skip
        assert found[name]["verdict"] == "pass", found[name]


def _bind_emitted_cluster_role(state: lab_module.LabState) -> RbacAuthorizationV1Api:
    env = {**os.environ, **state.endpoint.env()}
    emitted = subprocess.run(
        [sys.executable, "-m", "eksir", "permissions", "-o", "json"],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    rbac = RbacAuthorizationV1Api(new_client_from_config(state.admin_kubeconfig))
    rbac.create_cluster_role(json.loads(emitted.stdout)["cluster_role"])
    binding = V1ClusterRoleBinding(
        metadata=V1ObjectMeta(name="eksir-responder"),
        role_ref=V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="eksir-responder"),
        subjects=[{"kind": "User", "name": "eksir-responder", "apiGroup": "rbac.authorization.k8s.io"}],
    )
    rbac.create_cluster_role_binding(binding)
    return rbac


def test_a_removed_cluster_role_binding_fails_the_lab_doctor_with_the_command_that_restores_it(
    lab: lab_module.LabState,
) -> None:
    rbac = _bind_emitted_cluster_role(lab)
    try:
        bound = lab_doctor(lab, "--kubeconfig", lab.responder_kubeconfig)
        assert bound.returncode == 0, bound.stdout
        rbac.delete_cluster_role_binding("eksir-responder")
        done = lab_doctor(lab, "--kubeconfig", lab.responder_kubeconfig)
        assert done.returncode == ExitCode.STEP_FAILED
        assert done.stderr == "eksir: error: 1 check(s) failed: kubernetes permissions\n"
        permissions = checks(done)["kubernetes permissions"]
        assert permissions["verdict"] == "fail"
        assert permissions["fix"].endswith(
            "kubectl create clusterrolebinding eksir-responder --clusterrole eksir-responder "
            "--user eksir-responder"
        )
    finally:
        rbac.delete_cluster_role("eksir-responder")


def test_audit_logging_switched_off_fails_the_lab_doctor_with_the_command_that_turns_it_on(
    lab: lab_module.LabState,
) -> None:
    eks = lab.endpoint.client("eks")
    logging = eks.describe_cluster(name=lab.cluster)["cluster"]["logging"]
    off = {"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": False}]}
    eks.update_cluster_config(name=lab.cluster, logging=off)
    try:
        done = lab_doctor(lab)
        assert done.returncode == ExitCode.STEP_FAILED
        assert done.stderr == "eksir: error: 1 check(s) failed: audit logging\n"
        audit = checks(done)["audit logging"]
        assert audit["verdict"] == "fail"
        assert audit["fix"].startswith(f"aws eks update-cluster-config --name {lab.cluster} --logging")
        assert '"types":["audit"],"enabled":true' in audit["fix"]
    finally:
        eks.update_cluster_config(name=lab.cluster, logging=logging)
    assert lab_doctor(lab).returncode == 0
