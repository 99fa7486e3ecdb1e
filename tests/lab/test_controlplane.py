"""The lab control plane on the real kube-apiserver + etcd: authn, RBAC, PSA, audit, process lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from eksir.errors import LabError
from eksir.lab import processes
from eksir.lab.build import LabBinaries
from eksir.lab.controlplane import (
    ControlPlane,
    LabPorts,
    create_namespace,
    load_control_plane,
    start_control_plane,
)
from eksir.lab.kubeconfig import identity_headers

IAM_USER = "arn:aws:sts::111122223333:assumed-role/eks-dev/alice"
IAM_UID = "aws-iam-authenticator:111122223333:AROAEXAMPLEID123"
IAM_EXTRA = {
    "accessKeyId": ["ASIAEXAMPLEKEY123"],
    "arn": [IAM_USER],
    "canonicalArn": ["arn:aws:iam::111122223333:role/eks-dev"],
    "principalId": ["AROAEXAMPLEID123"],
    "sessionName": ["alice"],
}


def _eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Retry `check` until it returns a truthy value (RBAC caches and the audit file lag a little)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (ApiException, AssertionError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def _processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `text`: what a leak would look like."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _audit_events(plane: ControlPlane) -> list[dict[str, Any]]:
    return [json.loads(line) for line in plane.audit_log.read_text().splitlines() if line.strip()]


@pytest.fixture
def own_lab(lab_binaries: LabBinaries, tmp_path: Path) -> Iterator[Callable[..., ControlPlane]]:
    """Start extra labs for lifecycle tests; whatever a test leaves running is stopped afterwards."""
    started: list[Path] = []

    def start(**kwargs: Any) -> ControlPlane:
        workdir = tmp_path / f"lab{len(started)}"
        started.append(workdir)
        return start_control_plane(workdir, lab_binaries, **kwargs)

    yield start
    for workdir in started:
        processes.stop_all(workdir)


@pytest.mark.lab
def test_admin_is_system_masters_and_responder_has_no_groups_beyond_authenticated(
    control_plane: ControlPlane,
) -> None:
    for kubeconfig, user, groups in [
        (control_plane.admin_kubeconfig, "eksir-admin", ["system:masters", "system:authenticated"]),
        (control_plane.responder_kubeconfig, "eksir-responder", ["system:authenticated"]),
    ]:
        with control_plane.api_client(kubeconfig) as api:
            review = client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
        assert review.status.user_info.username == user
        assert review.status.user_info.groups == groups


@pytest.mark.lab
def test_the_api_server_reports_the_pinned_kubernetes_version(k8s_admin: ApiClient) -> None:
    assert client.VersionApi(k8s_admin).get_code().git_version == "v1.34.4"


@pytest.mark.lab
def test_responder_is_forbidden_to_list_secrets_until_granted(
    control_plane: ControlPlane, k8s_admin: ApiClient, k8s_namespace: str
) -> None:
    with control_plane.api_client(control_plane.responder_kubeconfig) as responder_api:
        responder = client.CoreV1Api(responder_api)
        with pytest.raises(ApiException) as denied:
            responder.list_namespaced_secret(k8s_namespace)
        assert denied.value.status == 403
        rbac = client.RbacAuthorizationV1Api(k8s_admin)
        rbac.create_namespaced_role(
            k8s_namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="read-secrets"),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            k8s_namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="responder-reads-secrets"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="read-secrets"
                ),
                subjects=[client.RbacV1Subject(kind="User", name="eksir-responder")],
            ),
        )
        listed = _eventually(lambda: responder.list_namespaced_secret(k8s_namespace))
        assert listed.items == []
        with pytest.raises(ApiException) as elsewhere:
            responder.list_namespaced_secret("kube-system")
        assert elsewhere.value.status == 403


@pytest.mark.lab
def test_identity_client_user_uid_groups_and_extra_appear_in_the_audit_log(
    control_plane: ControlPlane, k8s_admin: ApiClient, k8s_namespace: str
) -> None:
    # A Role, not the aggregated ClusterRole "edit": aggregation is a controller-manager job the lab lacks.
    rbac = client.RbacAuthorizationV1Api(k8s_admin)
    rbac.create_namespaced_role(
        k8s_namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-writer"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["create"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        k8s_namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="devs-write-configmaps"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-writer"
            ),
            subjects=[client.RbacV1Subject(kind="Group", name="eks-devs")],
        ),
    )
    name = f"probe-{uuid.uuid4().hex[:8]}"
    groups = ["eks-devs", "system:authenticated"]
    with control_plane.identity_api_client(IAM_USER, groups, uid=IAM_UID, extra=IAM_EXTRA) as api:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"k": "v"})
        _eventually(lambda: client.CoreV1Api(api).create_namespaced_config_map(k8s_namespace, body))

    def created_event() -> dict[str, Any] | None:
        for event in _audit_events(control_plane):
            ref = event.get("objectRef", {})
            if (
                ref.get("name") == name
                and event["verb"] == "create"
                and event["responseStatus"]["code"] == 201
            ):
                return event
        return None

    event = _eventually(created_event)
    assert event is not None, f"no audit event for configmap {name}"
    assert event["user"] == {"username": IAM_USER, "uid": IAM_UID, "groups": groups, "extra": IAM_EXTRA}
    assert "impersonatedUser" not in event
    assert event["level"] == "RequestResponse"
    assert event["requestObject"]["data"] == {"k": "v"}


@pytest.mark.lab
def test_identity_without_rbac_is_forbidden(control_plane: ControlPlane, k8s_namespace: str) -> None:
    with (
        control_plane.identity_api_client("mallory", ["system:authenticated"]) as api,
        pytest.raises(ApiException) as denied,
    ):
        client.CoreV1Api(api).list_namespaced_pod(k8s_namespace)
    assert denied.value.status == 403
    assert 'User "mallory" cannot list resource "pods"' in json.loads(denied.value.body)["message"]


def _privileged_pod(name: str) -> client.V1Pod:
    container = client.V1Container(
        name="c", image="busybox:1.36", security_context=client.V1SecurityContext(privileged=True)
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(containers=[container], node_name="node-1"),
    )


@pytest.mark.lab
def test_pod_security_admission_rejects_a_privileged_pod_in_a_baseline_namespace(
    k8s_admin: ApiClient, k8s_namespace: str
) -> None:
    core = client.CoreV1Api(k8s_admin)
    baseline = f"{k8s_namespace}-baseline"
    create_namespace(k8s_admin, baseline, {"pod-security.kubernetes.io/enforce": "baseline"})
    try:
        with pytest.raises(ApiException) as rejected:
            core.create_namespaced_pod(baseline, _privileged_pod("evil"))
        assert rejected.value.status == 403
        message = json.loads(rejected.value.body)["message"]
        assert 'violates PodSecurity "baseline:latest": privileged' in message
        accepted = core.create_namespaced_pod(k8s_namespace, _privileged_pod("evil"))
        assert accepted.spec.containers[0].security_context.privileged is True
        assert accepted.spec.node_name == "node-1"
    finally:
        core.delete_namespace(baseline)


@pytest.mark.lab
def test_a_second_start_in_a_running_labs_folder_is_refused(
    control_plane: ControlPlane, lab_binaries: LabBinaries
) -> None:
    with pytest.raises(LabError, match="a lab is already running in"):
        start_control_plane(control_plane.workdir, lab_binaries)


@pytest.mark.lab
def test_the_lab_can_be_described_again_from_its_folder(control_plane: ControlPlane) -> None:
    assert load_control_plane(control_plane.workdir) == control_plane


@pytest.mark.lab
def test_stop_leaves_no_process_and_frees_the_ports(own_lab: Callable[..., ControlPlane]) -> None:
    plane = own_lab()
    records = processes.read_records(plane.workdir)
    assert [r.name for r in records] == ["etcd", "eks-authenticator", "kube-apiserver"]
    assert all(processes.is_running(r) for r in records)
    plane.stop()
    assert _processes_mentioning(str(plane.workdir)) == []
    assert processes.status(plane.workdir) == []
    for port in (
        plane.ports.apiserver,
        plane.ports.etcd_client,
        plane.ports.etcd_peer,
        plane.ports.authenticator,
    ):
        processes.ensure_port_free(port, "check")


@pytest.mark.lab
def test_status_reports_a_crashed_server_as_exited_with_its_log(own_lab: Callable[..., ControlPlane]) -> None:
    plane = own_lab()
    os.kill(plane.pids["etcd"], signal.SIGKILL)
    states = _eventually(
        lambda: {s.record.name: s for s in plane.status() if s.state is processes.ProcState.EXITED}
    )
    assert set(states) == {"etcd"}
    assert "etcd" in {s.record.name for s in plane.status()}
    assert states["etcd"].log_tail != ""
    running = {s.record.name: s.state for s in plane.status()}
    assert running["kube-apiserver"] is processes.ProcState.RUNNING
    plane.stop()
    assert _processes_mentioning(str(plane.workdir)) == []


@pytest.mark.lab
def test_a_port_in_use_is_one_clear_error_and_starts_nothing(
    own_lab: Callable[..., ControlPlane], tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        etcd_client, etcd_peer = processes.free_ports(2)
        with pytest.raises(LabError) as caught:
            own_lab(ports=LabPorts(etcd_client=etcd_client, etcd_peer=etcd_peer, apiserver=taken))
    assert f"port 127.0.0.1:{taken} for kube-apiserver is already in use" in caught.value.message
    assert "eksir lab down" in caught.value.message
    assert _processes_mentioning(str(tmp_path / "lab0")) == []


@pytest.mark.lab
def test_a_picked_port_taken_before_the_start_is_picked_again(
    own_lab: Callable[..., ControlPlane], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a parallel test session) binds a port between the pick and the start: pick again."""
    real_free_ports = processes.free_ports
    picks: list[list[int]] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        def free_ports_losing_the_first_race(count: int) -> list[int]:
            ports = real_free_ports(count)
            picks.append([taken, *ports[1:]] if not picks else ports)
            return picks[-1]

        monkeypatch.setattr(processes, "free_ports", free_ports_losing_the_first_race)
        plane = own_lab()
    assert len(picks) == 2
    assert plane.ports.etcd_client != taken
    assert plane.ports.etcd_client == picks[1][0]
    assert {s.state for s in plane.status()} == {processes.ProcState.RUNNING}


@pytest.mark.lab
def test_a_server_dying_at_start_reports_its_log_and_leaves_no_orphan(
    own_lab: Callable[..., ControlPlane], tmp_path: Path
) -> None:
    with pytest.raises(LabError) as caught:
        own_lab(apiserver_args=["--no-such-flag=1"])
    assert "kube-apiserver exited during start" in caught.value.message
    assert "unknown flag: --no-such-flag" in caught.value.message
    assert _processes_mentioning(str(tmp_path / "lab0")) == []
    assert processes.read_records(tmp_path / "lab0") == []


def test_identity_headers_keep_the_case_of_extra_keys_and_repeat_groups() -> None:
    headers = identity_headers("u", ["a", "b"], "id-1", {"accessKeyId": ["AKIA1"]})
    assert headers == [
        ("X-Remote-User", "u"),
        ("X-Remote-Uid", "id-1"),
        ("X-Remote-Group", "a"),
        ("X-Remote-Group", "b"),
        ("X-Remote-Extra-access%4Bey%49d", "AKIA1"),
    ]


@pytest.mark.parametrize("bad", ["evil\r\nX-Remote-Group: system:masters", "tab\tbed", "naïve"])
def test_identity_values_that_cannot_travel_in_a_header_are_refused(bad: str) -> None:
    with pytest.raises(LabError, match="cannot be sent in an HTTP header"):
        identity_headers("u", [bad], None, {})


def test_a_recorded_pid_reused_by_another_program_is_neither_reported_running_nor_killed(
    tmp_path: Path,
) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        record = {
            "name": "etcd",
            "pid": bystander.pid,
            "cmdline": ["/old/lab/etcd", "--name=lab"],
            "port": 2379,
            "log": str(tmp_path / "etcd.log"),
        }
        (tmp_path / processes.PROCESSES_FILE).write_text(json.dumps([record]))
        assert [s.state for s in processes.status(tmp_path)] == [processes.ProcState.EXITED]
        processes.stop_all(tmp_path)
        assert bystander.poll() is None
        assert processes.read_records(tmp_path) == []
    finally:
        bystander.kill()
        bystander.wait()


def test_an_unreadable_process_record_is_a_lab_error(tmp_path: Path) -> None:
    (tmp_path / processes.PROCESSES_FILE).write_text("{not json")
    with pytest.raises(LabError, match=r"processes\.json is unreadable"):
        processes.status(tmp_path)


def test_a_lab_folder_that_cannot_be_created_is_a_lab_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    missing = LabBinaries(kube_apiserver=tmp_path / "none", etcd=tmp_path / "none", kubectl=tmp_path / "none")
    with pytest.raises(LabError, match="cannot prepare the lab folder"):
        start_control_plane(blocker / "lab", missing)


def test_a_missing_server_binary_is_a_lab_error_and_nothing_is_left_recorded(tmp_path: Path) -> None:
    missing = LabBinaries(
        kube_apiserver=tmp_path / "no-kube-apiserver",
        etcd=tmp_path / "no-etcd",
        kubectl=tmp_path / "no-kubectl",
    )
    with pytest.raises(LabError, match=r"cannot start etcd \(.*no-etcd\)"):
        start_control_plane(tmp_path / "lab", missing)
    assert processes.read_records(tmp_path / "lab") == []
