"""ssm.capture_volatile and ssm.pause_container.

The node script runs here, on this machine, with bash (moto's SSM runs nothing), in a node environment the
test builds itself: PATH holds a stand-in bin directory and a copy (by symlinks) of this machine's system
tools without the node tools under test (crictl, ctr, avml, aws), and EKSIR_TOOL_DIRS is empty, so what the
script finds depends on the test alone, never on what happens to be installed here. Absent tools must be
reported in its manifest and the script must still exit 0. The actions run end to end against moto
(send_command accepted, Success with no output); the objects the node would upload are produced by running
the real script with a stand-in `aws` CLI and placed into moto's S3 by the test, to exercise verify's
download, hashing and sidecar checks. Stubber only stands in for what moto cannot do: a failed invocation
and the output of a command that really ran.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from eksir.actions.base import ActionContext
from eksir.actions.containment.container_pause import PauseContainer, PauseContainerParams, task_commands
from eksir.actions.evidence.case_evidence import CASE_EXTRA
from eksir.actions.evidence.ssm_run import INVOCATION_OUTPUT_LIMIT, output_key
from eksir.actions.evidence.volatile import (
    SCRIPT_NAME,
    CaptureVolatile,
    CaptureVolatileParams,
    capture_commands,
    collection_script,
)
from eksir.actions.registry import get_action
from eksir.errors import RefusedError
from tests.actions.case_helpers import empty_case
from tests.actions.conftest import CASE_ID, boto_client, make_ctx, stubbed

BUCKET = "ir-evidence-111122223333"
PREFIX = f"eksir/{CASE_ID}/volatile/"
CID = "3f2a9c0d1e4b5a6978877665544332211000ffeeddccbbaa9988776655443322"
POD_UID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
SYSTEM_DIRS = ("/usr/local/bin", "/usr/local/sbin", "/usr/bin", "/usr/sbin", "/bin", "/sbin")
# The node's runtime and capture tools: each test decides whether the node has them (a stand-in in node bin).
NODE_TOOLS = frozenset({"crictl", "ctr", "avml", "aws", "containerd", "nerdctl", "docker"})
FAKE_AWS = """#!/bin/sh
# stand-in for `aws s3 cp [--only-show-errors] [--region R] SRC s3://BUCKET/KEY`: copies into $FAKE_S3
while [ $# -gt 0 ]; do
  case "$1" in s3|cp|--only-show-errors) shift ;; --region) shift 2 ;; *) break ;; esac
done
dest="$FAKE_S3/${2#s3://}"
mkdir -p "$(dirname "$dest")" && cp "$1" "$dest"
"""


def _exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _on_node(tool: str, path_dirs: list[str]) -> bool:
    return any(os.access(os.path.join(d, tool), os.X_OK) for d in path_dirs)


def _system_tools_without_node_tools(target: Path) -> None:
    """Symlink this machine's system tools into `target` (first match per name, as PATH), minus NODE_TOOLS."""
    target.mkdir()
    for directory in SYSTEM_DIRS:
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = target / name
            source = os.path.join(directory, name)
            if name in NODE_TOOLS or os.path.lexists(link) or not os.access(source, os.X_OK):
                continue
            link.symlink_to(source)


def _run_commands(commands: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run AWS-RunShellScript's `commands` the way the agent does: joined into one script run by sh."""
    return subprocess.run(
        ["sh", "-c", "\n".join(commands)], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _params(**extra: Any) -> CaptureVolatileParams:
    values: dict[str, Any] = {
        "instance_id": "i-0123456789abcdef0",
        "container_ids": [CID],
        "pod_uid": POD_UID,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "wait_seconds": 5,
        **extra,
    }
    return CaptureVolatileParams(**values)


@pytest.fixture
def node(tmp_path: Path) -> dict[str, Any]:
    """A stand-in node: a bin dir (with a fake aws), the system tools minus the node tools, a work root and
    a fake S3 directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _exe(bin_dir / "aws", FAKE_AWS)
    system_dir = tmp_path / "system-bin"
    _system_tools_without_node_tools(system_dir)
    path_dirs = [str(bin_dir), str(system_dir)]
    env = {
        "PATH": ":".join(path_dirs),
        "EKSIR_TOOL_DIRS": "",
        "HOME": str(tmp_path),
        "FAKE_S3": str(tmp_path / "s3"),
        "EKSIR_WORK_ROOT": str(tmp_path / "work"),
        "EKSIR_TOOL_TIMEOUT": "60",
    }
    (tmp_path / "work").mkdir()
    return {
        "bin": bin_dir,
        "env": env,
        "path_dirs": path_dirs,
        "s3": tmp_path / "s3",
        "work": tmp_path / "work",
    }


def _manifest(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()[1:] if line.count("\t") >= 3]


def test_the_script_ships_as_package_data() -> None:
    script = collection_script()
    assert script.startswith("#!/usr/bin/env bash")
    assert "docker" not in script.replace("docker is never", "")
    assert "curl" not in script
    assert "wget" not in script
    assert SCRIPT_NAME == "collect_volatile.sh"


def test_the_script_reports_absent_tools_in_its_manifest_and_exits_0(node: dict[str, Any]) -> None:
    ctx = make_ctx(case_id=CASE_ID)
    proc = _run_commands(capture_commands(ctx, _params()), node["env"])
    assert proc.returncode == 0, proc.stderr
    manifests = list(node["s3"].rglob("*.manifest.tsv"))
    assert len(manifests) == 1
    rows = _manifest(manifests[0].read_text())
    tools = {r[1]: r[2] for r in rows if r[0] == "tool"}
    assert {tool: tools[tool] for tool in ("crictl", "ctr", "avml", "aws", "tar", "sha256sum")} == {
        "crictl": "absent",
        "ctr": "absent",
        "avml": "absent",
        "aws": "ok",
        "tar": "ok",
        "sha256sum": "ok",
    }
    for tool in ("nsenter", "ss"):
        assert tools[tool] == ("ok" if _on_node(tool, node["path_dirs"]) else "absent")
    assert next(r[:3] for r in rows if r[0] == "memory") == ["memory", "avml", "absent"]
    assert next(r[1:3] for r in rows if r[1] == "host/proc-table.tsv") == ["host/proc-table.tsv", "ok"]
    assert any(r[0] == "netns" and r[2] == "ok" for r in rows)
    assert f"eksir-base: volatile-{CASE_ID}-i-0123456789abcdef0-" in proc.stdout
    assert "eksir-uploaded: 1" in proc.stdout


def test_the_uploaded_archive_matches_its_sidecar_and_its_sha256sums(
    node: dict[str, Any], tmp_path: Path
) -> None:
    proc = _run_commands(capture_commands(make_ctx(), _params()), node["env"])
    assert proc.returncode == 0, proc.stderr
    uploaded = node["s3"] / BUCKET / PREFIX
    names = sorted(p.name for p in uploaded.iterdir())
    base = next(n for n in names if n.endswith(".tar.gz")).removesuffix(".tar.gz")
    assert names == [
        f"{base}.manifest.tsv",
        f"{base}.manifest.tsv.sha256",
        f"{base}.tar.gz",
        f"{base}.tar.gz.sha256",
    ]
    for name in (f"{base}.tar.gz", f"{base}.manifest.tsv"):
        digest = hashlib.sha256((uploaded / name).read_bytes()).hexdigest()
        assert (uploaded / f"{name}.sha256").read_text().split()[0] == digest
    out = tmp_path / "extracted"
    with tarfile.open(uploaded / f"{base}.tar.gz") as tar:
        tar.extractall(out, filter="data")
    check = subprocess.run(
        ["sha256sum", "-c", "--quiet", "SHA256SUMS"],
        cwd=out / "files",
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert list(node["work"].iterdir()) == []  # the node's staging directory is gone after the upload


def test_without_an_aws_cli_the_evidence_stays_on_the_node_and_goes_to_stdout(node: dict[str, Any]) -> None:
    (node["bin"] / "aws").unlink()
    proc = _run_commands(capture_commands(make_ctx(), _params()), node["env"])
    assert proc.returncode == 0, proc.stderr
    assert "eksir-uploaded: 0" in proc.stdout
    assert "upload\tall\tabsent\taws CLI not on the node" in proc.stdout
    assert "----- host/proc-table.tsv" in proc.stdout
    kept = [p for p in node["work"].iterdir()]
    assert len(kept) == 1
    assert (kept[0] / "files" / "SHA256SUMS").is_file()


def test_a_container_found_by_crictl_gets_its_processes_sockets_and_mounts(node: dict[str, Any]) -> None:
    """A stand-in crictl reports a real process here as the container's pid; the rest is real /proc."""
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        _exe(
            node["bin"] / "crictl",
            "#!/bin/sh\n"
            'case " $* " in\n'
            f'  *" inspect "*) printf \'{{\\n  "info": {{\\n    "pid": {sleeper.pid},\\n\' ;;\n'
            '  *" logs "*) echo "container says hello" ;;\n'
            '  *" -q"*) ;;\n'
            "  *) echo '{\"containers\": []}' ;;\n"
            "esac\n",
        )
        proc = _run_commands(capture_commands(make_ctx(), _params()), node["env"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert proc.returncode == 0, proc.stderr
    archive = next(node["s3"].rglob("*.tar.gz"))
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        logs = tar.extractfile(f"files/container-{CID}/crictl-logs.txt")
        assert logs is not None
        assert logs.read() == b"container says hello\n"
        cmdline = tar.extractfile(f"files/container-{CID}/proc/{sleeper.pid}/cmdline")
        assert cmdline is not None
        assert cmdline.read().startswith(b"sleep 300")
    assert f"files/container-{CID}/mountinfo.txt" in names
    assert any(n.startswith(f"files/container-{CID}/sockets.txt") or "/proc-net/" in n for n in names)
    assert f"container\t{CID}\tok\tpid {sleeper.pid}" in proc.stdout
    assert any(line.startswith(f"upperdir\tcontainer-{CID}\t") for line in proc.stdout.splitlines())


# ------------------------------------------------------------------------------------------ against moto
@pytest.fixture
def instance_id(moto: Any) -> str:
    ec2 = boto_client(moto, "ec2")
    inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    boto_client(moto, "s3").create_bucket(Bucket=BUCKET)
    return str(inst["InstanceId"])


def _upload_node_output(moto: Any, node: dict[str, Any], params: CaptureVolatileParams) -> dict[str, str]:
    """Run the real script (fake aws into a directory), then put what it uploaded into moto's S3."""
    proc = _run_commands(capture_commands(make_ctx(), params), node["env"])
    assert proc.returncode == 0, proc.stderr
    s3 = boto_client(moto, "s3")
    digests = {}
    for path in sorted((node["s3"] / BUCKET).rglob("*")):
        if path.is_file():
            key = str(path.relative_to(node["s3"] / BUCKET))
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
            digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_apply_sends_the_script_with_the_evidence_bucket_and_a_rerun_reuses_it(
    aws_ctx: ActionContext, moto: Any, instance_id: str
) -> None:
    params = _params(instance_id=instance_id)
    action = CaptureVolatile()
    assert action.check(aws_ctx, params).ok
    applied = action.apply(aws_ctx, params)
    commands = boto_client(moto, "ssm").list_commands(InstanceId=instance_id)["Commands"]
    assert len(commands) == 1
    sent = commands[0]
    assert sent["CommandId"] == applied["command_id"]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["OutputS3BucketName"] == BUCKET
    assert sent["OutputS3KeyPrefix"] == f"{PREFIX}ssm-output/"
    assert sent["Parameters"]["commands"] == capture_commands(aws_ctx, params)
    again = action.apply(aws_ctx, params)
    assert again["command_id"] == applied["command_id"]
    assert again["reused"] is True
    assert action.check(aws_ctx, params).already_applied
    assert len(boto_client(moto, "ssm").list_commands(InstanceId=instance_id)["Commands"]) == 1


def test_verify_hashes_every_uploaded_object_into_the_case(
    aws_ctx: ActionContext, moto: Any, instance_id: str, node: dict[str, Any], tmp_path: Path
) -> None:
    case = empty_case(tmp_path / "case")
    aws_ctx.extras[CASE_EXTRA] = case
    params = _params(instance_id=instance_id)
    applied = CaptureVolatile().apply(aws_ctx, params)
    digests = _upload_node_output(moto, node, params)
    stdout_key = output_key(f"{PREFIX}ssm-output/", applied["command_id"], instance_id)
    assert stdout_key.endswith("/awsrunShellScript/0.awsrunShellScript/stdout")  # the agent's layout
    boto_client(moto, "s3").put_object(Bucket=BUCKET, Key=stdout_key, Body=b"eksir-uploaded: 1\n")
    digests[stdout_key] = hashlib.sha256(b"eksir-uploaded: 1\n").hexdigest()
    outcome = CaptureVolatile().verify(aws_ctx, params, applied)
    assert outcome.ok, outcome.detail
    items = case.load().evidence
    assert {i.source.split("?")[0]: i.sha256 for i in items} == {
        f"s3://{BUCKET}/{k}": d for k, d in digests.items()
    }
    for item in items:
        assert hashlib.sha256((case.path / item.path).read_bytes()).hexdigest() == item.sha256
    assert "tool crictl: absent" in outcome.detail
    again = CaptureVolatile().verify(aws_ctx, params, applied)
    assert again.ok
    assert len(case.load().evidence) == len(items)  # a retried verify does not list anything twice


def test_a_tampered_archive_fails_verify(
    aws_ctx: ActionContext, moto: Any, instance_id: str, node: dict[str, Any]
) -> None:
    params = _params(instance_id=instance_id)
    applied = CaptureVolatile().apply(aws_ctx, params)
    digests = _upload_node_output(moto, node, params)
    archive = next(k for k in digests if k.endswith(".tar.gz"))
    boto_client(moto, "s3").put_object(Bucket=BUCKET, Key=archive, Body=b"not what the node collected")
    outcome = CaptureVolatile().verify(aws_ctx, params, applied)
    assert not outcome.ok
    assert f"sha256 of {archive}" in outcome.detail


def test_a_capture_that_uploaded_nothing_fails_verify(
    aws_ctx: ActionContext, moto: Any, instance_id: str
) -> None:
    params = _params(instance_id=instance_id)
    applied = CaptureVolatile().apply(aws_ctx, params)
    outcome = CaptureVolatile().verify(aws_ctx, params, applied)
    assert not outcome.ok
    assert "nothing is in" in outcome.detail


def test_after_success_verify_waits_for_the_uploads_only_as_long_as_its_upload_bound(
    aws_ctx: ActionContext, moto: Any, instance_id: str
) -> None:
    """moto answers Success at once and nothing ever arrives: the wait ends at upload_wait_seconds."""
    params = _params(instance_id=instance_id, wait_seconds=900, upload_wait_seconds=1)
    applied = CaptureVolatile().apply(aws_ctx, params)
    started = time.monotonic()
    outcome = CaptureVolatile().verify(aws_ctx, params, applied)
    assert time.monotonic() - started < 30
    assert not outcome.ok
    assert "nothing is in" in outcome.detail


def test_a_failed_command_fails_verify_with_its_stderr() -> None:
    ssm = stubbed("ssm")
    params = _params()
    with Stubber(ssm) as stub:
        stub.add_response(
            "get_command_invocation",
            {
                "CommandId": "11111111-2222-3333-4444-555555555555",
                "InstanceId": params.instance_id,
                "DocumentName": "AWS-RunShellScript",
                "Status": "Failed",
                "StatusDetails": "Failed",
                "ResponseCode": 2,
                "StandardOutputContent": "",
                "StandardErrorContent": "eksir-volatile: cannot create /var/tmp/eksir-x/files",
            },
            {"CommandId": "11111111-2222-3333-4444-555555555555", "InstanceId": params.instance_id},
        )
        outcome = CaptureVolatile().verify(
            make_ctx(aws=lambda s: ssm), params, {"command_id": "11111111-2222-3333-4444-555555555555"}
        )
    assert not outcome.ok
    assert "is Failed" in outcome.detail
    assert "cannot create" in outcome.detail


def test_check_refuses_a_stopped_node_and_a_missing_bucket(
    aws_ctx: ActionContext, moto: Any, instance_id: str
) -> None:
    missing = CaptureVolatile().check(aws_ctx, _params(instance_id=instance_id, bucket="no-such-bucket-here"))
    assert not missing.ok
    assert "does not exist" in missing.detail
    boto_client(moto, "ec2").stop_instances(InstanceIds=[instance_id])
    stopped = CaptureVolatile().check(aws_ctx, _params(instance_id=instance_id))
    assert not stopped.ok
    assert "cannot be captured" in stopped.detail


def test_parameters_that_could_reach_the_shell_are_validated() -> None:
    with pytest.raises(ValueError, match="container_ids"):
        _params(container_ids=["abc; rm -rf /"])
    with pytest.raises(ValueError, match="prefix"):
        _params(prefix="x/$(reboot)/")


# ------------------------------------------------------------------------------------------ pause
FAKE_CTR = """#!/bin/sh
# stand-in ctr: one task whose state lives in $CTR_STATE; every pause/resume call is logged
case "$*" in
  *"tasks ls"*) printf 'TASK    PID    STATUS\\n%s    4242    %s\\n' "$CTR_ID" "$(cat "$CTR_STATE")" ;;
  *"tasks pause"*) echo pause >>"$CTR_STATE.log"; echo PAUSED >"$CTR_STATE" ;;
  *"tasks resume"*) echo resume >>"$CTR_STATE.log"; echo RUNNING >"$CTR_STATE" ;;
esac
"""


def test_the_pause_script_pauses_once_and_resume_restores(node: dict[str, Any], tmp_path: Path) -> None:
    _exe(node["bin"] / "ctr", FAKE_CTR)
    state = tmp_path / "state"
    state.write_text("RUNNING\n")
    env = {**node["env"], "CTR_STATE": str(state), "CTR_ID": CID}
    first = _run_commands(task_commands(CID[:12], "pause"), env)
    second = _run_commands(task_commands(CID[:12], "pause"), env)
    assert "eksir-state: PAUSED" in first.stdout
    assert "eksir-state: PAUSED" in second.stdout
    assert Path(f"{state}.log").read_text() == "pause\n"  # the second run was a no-op
    resumed = _run_commands(task_commands(CID, "resume"), env)
    assert "eksir-state: RUNNING" in resumed.stdout


def test_the_pause_script_fails_plainly_without_ctr(node: dict[str, Any]) -> None:
    proc = _run_commands(task_commands(CID, "pause"), node["env"])
    assert proc.returncode == 3
    assert "eksir-state: NO-CTR" in proc.stdout


def test_pause_sends_ctr_over_ssm_and_verify_needs_containerd_to_report_paused(
    aws_ctx: ActionContext, moto: Any, instance_id: str
) -> None:
    params = PauseContainerParams(instance_id=instance_id, container_id=CID, wait_seconds=1)
    applied = PauseContainer().apply(aws_ctx, params)
    sent = boto_client(moto, "ssm").list_commands(InstanceId=instance_id)["Commands"][0]
    assert sent["Parameters"]["commands"] == task_commands(CID, "pause")
    assert 'tasks "$VERB"' in sent["Parameters"]["commands"][1]
    assert PauseContainer().apply(aws_ctx, params)["command_id"] == applied["command_id"]
    outcome = PauseContainer().verify(aws_ctx, params, applied)
    assert not outcome.ok  # moto ran nothing, so containerd reported nothing
    assert "state not reported" in outcome.detail


def _invocation(params: PauseContainerParams, output: str) -> dict[str, Any]:
    return {
        "CommandId": "22222222-3333-4444-5555-666666666666",
        "InstanceId": params.instance_id,
        "DocumentName": "AWS-RunShellScript",
        "Status": "Success",
        "StatusDetails": "Success",
        "ResponseCode": 0,
        "StandardOutputContent": output,
        "StandardErrorContent": "",
    }


def _send(params: PauseContainerParams, verb: str, command_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    expected = {
        "InstanceIds": [params.instance_id],
        "DocumentName": "AWS-RunShellScript",
        "Comment": ANY,
        "Parameters": {"commands": task_commands(CID, verb), "executionTimeout": ["120"]},
        "TimeoutSeconds": 600,
    }
    return {"Command": {"CommandId": command_id}}, expected


def test_pause_verify_reads_the_state_back_and_rollback_reads_the_state_containerd_reports() -> None:
    ssm = stubbed("ssm")
    params = PauseContainerParams(instance_id="i-0123456789abcdef0", container_id=CID, wait_seconds=1)
    ctx = make_ctx(aws=lambda s: ssm)
    key = {"CommandId": "22222222-3333-4444-5555-666666666666", "InstanceId": params.instance_id}
    with Stubber(ssm) as stub:
        stub.add_response("get_command_invocation", _invocation(params, "eksir-state: PAUSED\n"), key)
        stub.add_response("send_command", *_send(params, "status", key["CommandId"]))
        stub.add_response("get_command_invocation", _invocation(params, "eksir-state: PAUSED\n"), key)
        stub.add_response("list_commands", {"Commands": []}, {"InstanceId": params.instance_id})
        stub.add_response("send_command", *_send(params, "resume", key["CommandId"]))
        stub.add_response("get_command_invocation", _invocation(params, "eksir-state: RUNNING\n"), key)
        assert PauseContainer().verify(ctx, params, {"command_id": key["CommandId"]}).ok
        PauseContainer().rollback(ctx, params, {"command_id": key["CommandId"]})
        stub.assert_no_pending_responses()


def test_pause_verify_fails_when_the_read_back_finds_the_task_running_again() -> None:
    ssm = stubbed("ssm")
    params = PauseContainerParams(instance_id="i-0123456789abcdef0", container_id=CID, wait_seconds=1)
    ctx = make_ctx(aws=lambda s: ssm)
    key = {"CommandId": "22222222-3333-4444-5555-666666666666", "InstanceId": params.instance_id}
    with Stubber(ssm) as stub:
        stub.add_response("get_command_invocation", _invocation(params, "eksir-state: PAUSED\n"), key)
        stub.add_response("send_command", *_send(params, "status", key["CommandId"]))
        stub.add_response("get_command_invocation", _invocation(params, "eksir-state: RUNNING\n"), key)
        outcome = PauseContainer().verify(ctx, params, {"command_id": key["CommandId"]})
    assert not outcome.ok
    assert "RUNNING (read back)" in outcome.detail


def test_the_actions_are_registered_with_their_iam_actions() -> None:
    capture = get_action("ssm.capture_volatile").spec
    assert {"ssm:SendCommand", "ssm:GetCommandInvocation", "s3:GetObject", "s3:ListBucket"} <= set(
        capture.iam_actions
    )
    assert not capture.destructive
    pause = get_action("ssm.pause_container").spec
    assert pause.destructive
    assert pause.reversible


def test_a_dry_run_sends_nothing(moto: Any, instance_id: str) -> None:
    ctx = make_ctx(aws=lambda s: boto_client(moto, s), dry_run=True)
    with pytest.raises(RefusedError):
        CaptureVolatile().apply(ctx, _params(instance_id=instance_id))
    assert boto_client(moto, "ssm").list_commands(InstanceId=instance_id)["Commands"] == []


def test_without_node_uploads_only_the_command_output_arrives_and_verify_fails_keeping_it(
    aws_ctx: ActionContext, moto: Any, instance_id: str, tmp_path: Path
) -> None:
    """A node without the aws CLI: SSM itself still writes the script's stdout to the evidence bucket. It goes
    into the case, but the capture is not verified: the host evidence (the node's archive) never arrived."""
    case = empty_case(tmp_path / "case")
    aws_ctx.extras[CASE_EXTRA] = case
    params = _params(instance_id=instance_id)
    applied = CaptureVolatile().apply(aws_ctx, params)
    key = output_key(f"{PREFIX}ssm-output/", applied["command_id"], instance_id)
    body = b"eksir-uploaded: 0\n----- host/proc-table.tsv\npid\tppid\n1\t0\n"
    boto_client(moto, "s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    outcome = CaptureVolatile().verify(aws_ctx, params, applied)
    assert not outcome.ok
    assert "host evidence missing" in outcome.detail
    assert "only the SSM command output arrived" in outcome.detail
    [item] = case.load().evidence
    assert item.sha256 == hashlib.sha256(body).hexdigest()
    assert item.name.endswith("awsrunShellScript/0.awsrunShellScript/stdout")


def test_markers_past_the_invocations_24000_characters_are_read_from_the_full_stdout_in_s3(
    moto: Any, tmp_path: Path
) -> None:
    """GetCommandInvocation returns the first 24,000 characters of stdout (Stubber: moto returns none); the
    node script prints `eksir-kept-on-node` after up to 200 kB of process table, so verify must read the
    agent's complete stdout object in S3 to see it."""
    ssm = stubbed("ssm")
    ctx = make_ctx(aws=lambda s: ssm if s == "ssm" else boto_client(moto, s))
    case = empty_case(tmp_path / "case")
    ctx.extras[CASE_EXTRA] = case
    params = _params()
    boto_client(moto, "s3").create_bucket(Bucket=BUCKET)
    command_id = "33333333-4444-5555-6666-777777777777"
    full = (
        "eksir-uploaded: 0\n----- host/proc-table.tsv\n"
        + "".join(f"{pid}\t1\t0\tS\tsleep {pid}\n" for pid in range(3000))
        + "eksir-kept-on-node: /var/tmp/eksir-volatile-case\n"
    )
    assert len(full) > 30_000 > INVOCATION_OUTPUT_LIMIT
    key = output_key(f"{PREFIX}ssm-output/", command_id, params.instance_id)
    boto_client(moto, "s3").put_object(Bucket=BUCKET, Key=key, Body=full.encode())
    invocation = {
        "CommandId": command_id,
        "InstanceId": params.instance_id,
        "Status": "Success",
        "StatusDetails": "Success",
        "StandardOutputContent": full[:INVOCATION_OUTPUT_LIMIT],
        "StandardErrorContent": "",
    }
    with Stubber(ssm) as stub:
        stub.add_response(
            "get_command_invocation", invocation, {"CommandId": command_id, "InstanceId": params.instance_id}
        )
        outcome = CaptureVolatile().verify(ctx, params, {"command_id": command_id})
    assert "eksir-kept-on-node" not in invocation["StandardOutputContent"]
    assert not outcome.ok, "only the SSM output arrived: the host evidence is still on the node"
    assert "it is kept on the node in /var/tmp/eksir-volatile-case" in outcome.detail
    [item] = case.load().evidence
    assert item.sha256 == hashlib.sha256(full.encode()).hexdigest()
