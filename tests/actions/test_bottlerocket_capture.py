"""Capture on Bottlerocket: detected from the node's OS image, run on the host through the admin container.

The rendering is executed, not only read: a stand-in `apiclient` on PATH that, like `apiclient exec admin
sheltie`, hands its stdin to a root shell, proves the exports and the heredoc reach the script intact.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

from eksir.actions.evidence.ssm_run import HEREDOC_END, host_shell_command, script_command
from eksir.actions.evidence.volatile import CaptureVolatileParams, capture_commands, collection_script
from eksir.findings import read_findings_from_path
from eksir.models.resolution import NodeInfo, is_bottlerocket
from eksir.playbooks.privileged_container import PlaybookOptions, build_plan
from eksir.resolve.node import node_info
from tests.actions.conftest import make_ctx
from tests.actions.test_playbook_params import resolution_of

BOTTLEROCKET_IMAGE = "Bottlerocket OS 1.26.1 (aws-k8s-1.31)"


def _raw_node(os_image: str) -> dict[str, object]:
    return {
        "metadata": {"name": "ip-10-0-1-23.ec2.internal", "labels": {}},
        "spec": {"providerID": "aws:///us-east-1a/i-0123456789abcdef0"},
        "status": {"nodeInfo": {"osImage": os_image}},
    }


def test_the_os_image_decides_bottlerocket() -> None:
    assert node_info(_raw_node(BOTTLEROCKET_IMAGE)).bottlerocket
    assert node_info(_raw_node(BOTTLEROCKET_IMAGE)).os_image == BOTTLEROCKET_IMAGE
    assert not node_info(_raw_node("Amazon Linux 2023.6.20241010")).bottlerocket
    assert not node_info({"metadata": {"name": "n"}, "spec": {}}).bottlerocket  # no status: not assumed
    assert is_bottlerocket("bottlerocket os 1.20.0 (aws-k8s-1.29-nvidia)")


def test_a_bottlerocket_node_gets_the_admin_container_capture_and_a_note() -> None:
    finding = read_findings_from_path("tests/data/findings/iam-role.boto3.json")[0]
    resolution = resolution_of(finding)
    assert resolution.node is not None
    node = resolution.node.model_copy(update={"os_image": BOTTLEROCKET_IMAGE})
    options = PlaybookOptions(case_id="eksir-20251120-0123456789", evidence_bucket="ir-evidence-111122223333")
    plan = build_plan(finding, resolution.model_copy(update={"node": node}), options)
    capture = next(s for s in plan.steps if s.action_id == "ssm.capture_volatile")
    assert capture.params["host_os"] == "bottlerocket"
    assert any("apiclient exec admin sheltie" in n.message for n in plan.notes)
    linux = build_plan(finding, resolution, replace(options))
    assert "host_os" not in next(s for s in linux.steps if s.action_id == "ssm.capture_volatile").params


def test_the_capture_commands_wrap_the_script_in_apiclient_exec_admin_sheltie() -> None:
    ctx = make_ctx(case_id="case-0001")
    base = {"instance_id": "i-0123456789abcdef0", "bucket": "ir-evidence", "prefix": "eksir/case/"}
    rocket = capture_commands(ctx, CaptureVolatileParams(**base, host_os="bottlerocket"))
    assert rocket[0] == f"apiclient exec admin sheltie <<'{HEREDOC_END}'"
    assert rocket[1].startswith("export EKSIR_CASE_ID=case-0001 EKSIR_INSTANCE_ID=i-0123456789abcdef0")
    assert rocket[2] == collection_script()
    assert rocket[3] == HEREDOC_END
    linux = capture_commands(ctx, CaptureVolatileParams(**base))
    assert linux[0].endswith(f"bash -s <<'{HEREDOC_END}'")
    assert "apiclient" not in linux[0]


def _fake_apiclient(bin_dir: Path) -> None:
    """`apiclient exec admin sheltie` as far as the script can tell: a root shell reading stdin."""
    tool = bin_dir / "apiclient"
    tool.write_text('#!/bin/sh\n[ "$1 $2 $3" = "exec admin sheltie" ] || exit 64\nexec bash -s\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def test_the_rendered_commands_run_with_the_values_intact_even_hostile_ones(tmp_path: Path) -> None:
    _fake_apiclient(tmp_path)
    env = {"EKSIR_CASE_ID": "case-0001", "EKSIR_PREFIX": "a b;$(touch pwned)'\"`x`"}
    script = 'printf "%s|%s\\n" "$EKSIR_CASE_ID" "$EKSIR_PREFIX"\n'
    for render in (host_shell_command, script_command):
        commands = render(env, script)
        shell = "\n".join(commands) + "\n"
        if render is script_command:  # the Linux form needs no apiclient
            assert "apiclient" not in shell
        result = subprocess.run(
            ["bash", "-c", shell],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"case-0001|{env['EKSIR_PREFIX']}\n"
        assert not (tmp_path / "pwned").exists()


def test_node_info_keeps_the_os_image_bounded() -> None:
    info = node_info(_raw_node("Bottlerocket " + "x" * 5000))
    assert isinstance(info, NodeInfo)
    assert info.os_image is not None
    assert len(info.os_image) == 200
