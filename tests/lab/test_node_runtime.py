"""The attacked node on a real containerd: the container matches the pod, capture and pause work end to end.

One lab (`eksir lab up` code path, scenario iam-user) serves the module: containerd runs under the lab folder
with the attacker's privileged container, and the lab's SSM agent stand-in runs what eksir sends over SSM.
The actions run exactly as against AWS (their clients reach the lab's moto); what they report is checked
against containerd itself (`ctr`) and against the objects in moto's S3. The last tests kill the container
during a capture and take the lab down, then look for anything left behind. The module starts its own lab
(one scenario) rather than the shared `lab` fixture (all five): the tests kill its container and take it down.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eksir.actions.base import ActionContext
from eksir.actions.containment.container_pause import PauseContainer, PauseContainerParams
from eksir.actions.evidence.case_evidence import CASE_EXTRA
from eksir.actions.evidence.volatile import CaptureVolatile, CaptureVolatileParams
from eksir.errors import LabError
from eksir.lab import lab as lab_module
from eksir.lab import node_runtime, node_teardown
from eksir.lab.node_runtime import ctr, task_state
from eksir.models.case import EvidenceItem
from eksir.store.case_store import CaseHandle
from eksir.store.sensitivity import NODE_CAPTURE, sensitive_reason
from tests.actions.case_helpers import empty_case
from tests.actions.conftest import make_ctx
from tests.node_runtime import require_node_runtime

pytestmark = pytest.mark.lab
ATTACKER_COMMAND = "sleep infinity"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab_module.LabState]:
    require_node_runtime()
    lab_dir = tmp_path_factory.mktemp("node-lab")
    state = lab_module.up(lab_dir, "iam-user", seed=20240611)
    try:
        yield state
    finally:
        lab_module.down(lab_dir)


@pytest.fixture
def ctx(lab: lab_module.LabState, tmp_path: Path) -> ActionContext:
    context = make_ctx(aws=lab.endpoint.client, case_id=f"case-{tmp_path.name[-12:]}")
    context.extras[CASE_EXTRA] = empty_case(tmp_path / "case")
    return context


def _runtime(lab: lab_module.LabState) -> dict[str, Any]:
    assert lab.node_runtime, lab.node_runtime_reason
    return lab.node_runtime


def _capture_params(lab: lab_module.LabState, prefix: str) -> CaptureVolatileParams:
    runtime = _runtime(lab)
    pod = json.loads(Path(lab.ground_truth).read_text())["pod"]
    return CaptureVolatileParams(
        instance_id=runtime["instance_id"],
        container_ids=(runtime["container_id"],),
        pod_uid=pod["uid"],
        bucket=lab.evidence_bucket,
        prefix=prefix,
        wait_seconds=120,
    )


def _case(ctx: ActionContext) -> CaseHandle:
    case = ctx.extras[CASE_EXTRA]
    assert isinstance(case, CaseHandle)
    return case


def test_the_lab_runs_the_attackers_privileged_container_in_containerd_as_the_pod_records_it(
    lab: lab_module.LabState,
) -> None:
    runtime = _runtime(lab)
    assert lab.node_runtime_reason == ""
    pod = json.loads(Path(lab.ground_truth).read_text())["pod"]
    assert runtime["instance_id"] == pod["instance_id"]
    info = json.loads(ctr(runtime["socket"], "containers", "info", runtime["container_id"]))
    assert info["Image"] == runtime["image"] == "docker.io/alpine/socat:1.8.0.0"
    assert info["Labels"]["io.kubernetes.pod.uid"] == pod["uid"]
    assert info["Labels"]["io.kubernetes.pod.name"] == pod["name"]
    assert info["Labels"]["io.kubernetes.container.name"] == "shell"
    assert info["Spec"]["annotations"]["io.kubernetes.cri.container-name"] == "shell"
    assert "CAP_SYS_ADMIN" in info["Spec"]["process"]["capabilities"]["bounding"]  # privileged
    assert info["Spec"]["process"]["args"] == ["/bin/sh", "-c", ATTACKER_COMMAND]
    assert task_state(runtime["socket"], runtime["container_id"]) == (runtime["pid"], "RUNNING")


def _s3_digests(lab: lab_module.LabState, prefix: str) -> dict[str, str]:
    s3 = lab.endpoint.client("s3")
    listed = s3.list_objects_v2(Bucket=lab.evidence_bucket, Prefix=prefix).get("Contents", [])
    return {
        f"s3://{lab.evidence_bucket}/{o['Key']}": hashlib.sha256(
            s3.get_object(Bucket=lab.evidence_bucket, Key=o["Key"])["Body"].read()
        ).hexdigest()
        for o in listed
    }


def _archive(case: CaseHandle, items: list[EvidenceItem]) -> tarfile.TarFile:
    (item,) = [i for i in items if i.name.endswith(".tar.gz")]
    return tarfile.open(fileobj=io.BytesIO((case.path / item.path).read_bytes()))


def _container_files(archive: tarfile.TarFile, cid: str, suffix: str) -> dict[str, str]:
    return {
        m.name: archive.extractfile(m).read().decode(errors="replace")  # type: ignore[union-attr]
        for m in archive.getmembers()
        if m.name.startswith(f"files/container-{cid}/") and m.name.endswith(suffix) and m.isfile()
    }


def test_capture_puts_the_attackers_process_in_the_case_with_hashes_that_match_s3(
    lab: lab_module.LabState, ctx: ActionContext
) -> None:
    params = _capture_params(lab, "eksir/real-capture/volatile/")
    action = CaptureVolatile()
    assert action.check(ctx, params).ok
    outcome = action.verify(ctx, params, action.apply(ctx, params))
    assert outcome.ok, outcome.detail
    case = _case(ctx)
    items = case.load().evidence
    assert {i.source.split("?")[0]: i.sha256 for i in items} == _s3_digests(lab, params.key_prefix)
    assert all(sensitive_reason(i, case.path) == NODE_CAPTURE for i in items)  # environ, inspect output
    cid = _runtime(lab)["container_id"]
    with _archive(case, items) as archive:
        cmdlines = _container_files(archive, cid, "/cmdline")
        assert any(c.strip() == ATTACKER_COMMAND for c in cmdlines.values()), cmdlines
        assert _container_files(archive, cid, "/environ")
        names = archive.getnames()
    for part in ("ctr-info.json", "mountinfo.txt", "sockets.txt"):
        assert f"files/container-{cid}/{part}" in names
    assert {"files/host/proc-table.tsv", "files/host/sockets.txt", "files/SHA256SUMS"} <= set(names)


def test_pause_leaves_the_task_paused_in_containerd_verify_fails_once_it_runs_and_rollback_resumes(
    lab: lab_module.LabState, ctx: ActionContext
) -> None:
    runtime = _runtime(lab)
    socket, cid = runtime["socket"], runtime["container_id"]
    params = PauseContainerParams(
        instance_id=runtime["instance_id"],
        container_id=cid,
        bucket=lab.evidence_bucket,
        prefix="eksir/real-pause/",
        wait_seconds=120,
    )
    action = PauseContainer()
    applied = action.apply(ctx, params)
    outcome = action.verify(ctx, params, applied)
    assert outcome.ok, outcome.detail
    assert task_state(socket, cid) == (runtime["pid"], "PAUSED")
    ctr(socket, "tasks", "resume", cid)  # someone resumes it behind eksir's back
    again = action.verify(ctx, params, applied)
    assert not again.ok
    assert "RUNNING (read back)" in again.detail
    ctr(socket, "tasks", "pause", cid)
    action.rollback(ctx, params, applied)
    assert task_state(socket, cid) == (runtime["pid"], "RUNNING")


def test_the_lab_env_points_ctr_at_the_attacked_nodes_containerd(lab: lab_module.LabState) -> None:
    script = f"{lab_module.env_exports(lab)}\nctr --namespace k8s.io tasks ls"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert _runtime(lab)["container_id"] in done.stdout


def _wait_until_running_on_node(lab: lab_module.LabState, command_id: str) -> None:
    status = Path(lab.lab_dir) / node_runtime.NODE_DIR / "ssm" / command_id / "status"
    deadline = time.monotonic() + 60
    while not status.is_file():
        assert time.monotonic() < deadline, "the lab's SSM agent never started the command"
        time.sleep(0.02)


def test_killing_the_container_during_capture_ends_the_step_with_what_it_got_without_hanging(
    lab: lab_module.LabState, ctx: ActionContext
) -> None:
    runtime = _runtime(lab)
    params = _capture_params(lab, "eksir/killed-capture/volatile/")
    action = CaptureVolatile()
    applied = action.apply(ctx, params)
    _wait_until_running_on_node(lab, applied["command_id"])
    os.kill(runtime["pid"], signal.SIGKILL)  # the attacker's main process dies mid-capture
    started = time.monotonic()
    outcome = action.verify(ctx, params, applied)
    assert time.monotonic() - started < 90
    assert outcome.ok, outcome.detail
    assert outcome.observed["evidence"]
    gaps = outcome.observed["node_findings"]
    assert any(f.startswith(f"container {runtime['container_id']}: failed") for f in gaps), gaps
    state = task_state(runtime["socket"], runtime["container_id"])
    assert state is None or state[1] == "STOPPED"


def test_lab_down_leaves_no_containerd_shim_mount_container_or_cgroup_even_with_a_paused_task(
    lab: lab_module.LabState,
) -> None:
    runtime = _runtime(lab)
    node_dir = Path(lab.lab_dir) / node_runtime.NODE_DIR
    socket, cgroup = runtime["socket"], f"{runtime['cgroup_parent']}/extra"
    runc_root = str(node_dir / "runc")
    ctr(
        socket,
        "run",
        "--detach",
        "--runc-root",
        runc_root,
        "--cgroup",
        cgroup,
        runtime["image"],
        "extra",
        "/bin/sleep",
        "600",
    )
    ctr(socket, "tasks", "pause", "extra")  # a frozen process ignores SIGKILL until thawed
    assert task_state(socket, "extra") is not None
    assert node_teardown.leftovers(node_dir)  # the runtime is up: there is something to find
    lab_module.down(Path(lab.lab_dir))
    assert node_teardown.leftovers(node_dir) == []
    assert str(node_dir) not in Path("/proc/self/mountinfo").read_text()
    assert not [pid for pid, args in _cmdlines().items() if runtime["socket"] in args]


def _cmdlines() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = entry.joinpath("cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue  # exited while we looked
    return found


def test_a_node_container_that_cannot_start_fails_lab_up_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_node_runtime()
    real = node_runtime.pod_container

    def no_such_command(pod: dict[str, Any]) -> node_runtime.PodContainer:
        return dataclasses.replace(real(pod), command=("/no/such/binary",))

    monkeypatch.setattr(node_runtime, "pod_container", no_such_command)
    with pytest.raises(LabError, match="on the lab node failed"):
        lab_module.up(tmp_path, "iam-user", seed=20240611)
    node_dir = tmp_path / node_runtime.NODE_DIR
    assert (node_dir / "containerd.log").is_file()  # containerd did start before the failure
    assert node_teardown.leftovers(node_dir) == []
    assert [s.record.pid for s in lab_module.process_status(tmp_path)] == []
