"""The lab node's parts that need no root: its image, the agent's S3 layout, why a node is simulated."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from eksir.actions.containment.container_pause import task_commands
from eksir.actions.evidence import ssm_run
from eksir.actions.evidence.volatile import CaptureVolatileParams, capture_commands
from eksir.errors import LabError
from eksir.lab import node_image, node_runtime, ssm_agent
from eksir.lab.limits import NODE_STEPS, unavailable_in_lab
from tests.actions.conftest import make_ctx


def _busybox(tmp_path: Path) -> Path:
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF not really busybox")
    return fake


def test_the_image_archive_is_deterministic_and_its_config_names_the_layers_sha256(tmp_path: Path) -> None:
    busybox = _busybox(tmp_path)
    first = node_image.image_archive("docker.io/alpine/socat:1.8.0.0", tmp_path / "a.tar", busybox)
    second = node_image.image_archive("docker.io/alpine/socat:1.8.0.0", tmp_path / "b.tar", busybox)
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        (manifest,) = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layer = tar.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest["Config"]).read())  # type: ignore[union-attr]
    assert manifest["RepoTags"] == ["docker.io/alpine/socat:1.8.0.0"]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as rootfs:
        assert rootfs.extractfile("bin/busybox").read() == busybox.read_bytes()  # type: ignore[union-attr]
        assert rootfs.getmember("bin/sh").linkname == "busybox"


def test_a_missing_busybox_is_a_lab_error_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="busybox-static"):
        node_image.image_archive("x:1", tmp_path / "a.tar", tmp_path / "absent")


def test_the_agent_uploads_where_eksir_reads_the_ssm_output() -> None:
    product = ssm_run.output_key("eksir/c/volatile/ssm-output/", "cmd-1", "i-0abc")
    assert product == "eksir/c/volatile/ssm-output/cmd-1/i-0abc/awsrunShellScript/0.awsrunShellScript/stdout"
    assert ssm_agent.output_key("eksir/c/volatile/ssm-output/", "cmd-1", "i-0abc", "stdout") == product
    assert ssm_agent.output_key("", "cmd-1", "i-0abc", "stderr").startswith("cmd-1/i-0abc/")


def test_the_agent_gives_scripts_the_nodes_context_and_no_other_environment(tmp_path: Path) -> None:
    config = ssm_agent.AgentConfig(
        "i-0abc", "http://127.0.0.1:1", "us-east-1", "k", "s", "/x/c.sock", str(tmp_path)
    )
    env = ssm_agent.node_env(config)
    assert env["CONTAINERD_ADDRESS"] == "/x/c.sock"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["PATH"].startswith(f"{tmp_path}/bin:")
    assert env["EKSIR_WORK_ROOT"].startswith(str(tmp_path))
    assert "EKSIR_TOOL_DIRS" not in env  # eksir does not pass it: the script looks where it would on a node


def test_a_simulated_node_makes_capture_and_pause_unavailable_in_lab_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(node_runtime.FORCE_SIMULATED_ENV, "simulated")
    why = node_runtime.reason()
    assert why is not None
    assert node_runtime.FORCE_SIMULATED_ENV in why
    table = unavailable_in_lab(why)
    assert set(table) == set(NODE_STEPS) == {"ssm.capture_volatile", "ssm.pause_container"}
    assert all(why in reason for reason in table.values())
    assert dict(unavailable_in_lab("")) == {}  # a real node: nothing is unavailable


def test_without_root_the_reason_says_root_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(node_runtime.FORCE_SIMULATED_ENV, raising=False)
    monkeypatch.setattr(node_runtime.os, "geteuid", lambda: 1000)
    assert node_runtime.reason() == (
        "the lab runs the node's containerd only as root (run `eksir lab up` as root)"
    )


def test_without_containerd_the_reason_names_what_is_missing_and_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(node_runtime.FORCE_SIMULATED_ENV, raising=False)
    monkeypatch.setattr(node_runtime.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        node_runtime.shutil, "which", lambda tool: None if tool == "runc" else f"/usr/bin/{tool}"
    )
    why = node_runtime.reason()
    assert why is not None
    assert why.startswith("runc")
    assert "apt-get install containerd runc busybox-static" in why


def test_the_pod_container_comes_from_the_pods_spec_and_status() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
        "spec": {
            "containers": [{"name": "shell", "image": "i:1", "command": ["/bin/sh"], "args": ["-c", "x"]}]
        },
        "status": {"containerStatuses": [{"containerID": "containerd://" + "a" * 64}]},
    }
    container = node_runtime.pod_container(pod)
    assert container.container_id == "a" * 64
    assert container.command == ("/bin/sh", "-c", "x")
    assert node_runtime.cri_labels(container)["io.kubernetes.pod.uid"] == "u-1"
    assert node_runtime.cri_annotations(container)["io.kubernetes.cri.image-name"] == "i:1"


def test_the_agent_runs_exactly_eksirs_capture_and_pause_commands_and_refuses_anything_else() -> None:
    params = CaptureVolatileParams(
        instance_id="i-0123456789abcdef0", container_ids=("a" * 64,), bucket="b-ucket", prefix="x/y/"
    )
    capture = capture_commands(make_ctx(case_id="eksir-1 $(id)"), params)
    assert ssm_agent.refusal(capture) is None
    for verb in ("pause", "resume", "status"):
        assert ssm_agent.refusal(task_commands("a" * 64, verb)) is None
    injected = [capture[0].replace("bash -s", "id; bash -s"), *capture[1:]]
    assert ssm_agent.refusal(injected) == "not an eksir command (shape or first line)"
    altered = [capture[0], capture[1] + "\nid\n", capture[2]]
    assert ssm_agent.refusal(altered) == "the script is not one eksir ships"
    assert ssm_agent.refusal(["id"]) is not None
