"""The lab's stand-in for the SSM agent on the attacked node (DESIGN.md, "What the lab may imitate").

Why a stand-in: moto accepts `SendCommand` but runs nothing, and no real SSM agent can register with moto.
This process does the agent's part for one instance: it polls moto's `ListCommands` for commands sent to that
instance, runs each `AWS-RunShellScript` once (the `commands` joined into one script run by bash, as the agent
does) in the node's context (the node's containerd socket as ctr's default, the node's `aws` CLI pointed at
moto) and uploads the output where the real agent puts it:
`<OutputS3KeyPrefix>/<command-id>/<instance-id>/awsrunShellScript/0.awsrunShellScript/stdout|stderr`.
eksir's product code path is unchanged: it sends the command and reads S3 as on AWS. moto's
`GetCommandInvocation` still answers Success with empty output at once, which is why eksir's verification
waits for the S3 objects. Started by `lab up` as a recorded process, stopped by `lab down`. Never imported by
the product.

Why it runs only eksir's own scripts: it runs as root (the node's containerd needs it), and anyone on this
machine can reach moto's loopback port with its dummy credentials. So a command runs only when it is exactly
what eksir sends: one line of shell-quoted `EKSIR_*` assignments (or the pause script's validated arguments)
feeding `bash -s`, then byte for byte the shipped capture or pause script. Anything else is refused, and the
refusal is the command's stderr in S3.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from eksir.actions.containment.container_pause import TASK_SCRIPT
from eksir.actions.evidence.ssm_run import HEREDOC_END
from eksir.actions.evidence.volatile import collection_script
from eksir.lab import processes

DOCUMENT = "AWS-RunShellScript"
PLUGIN_DIR = "awsrunShellScript/0.awsrunShellScript"
POLL_S = 0.5
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH the SSM agent gives a shell script on Amazon Linux: the node's system folders only."""
_SAFE_VALUE = r"(?:'[^']*'|[A-Za-z0-9@%+=:,./_-]*)"
_FIRST_LINE = re.compile(
    rf"(?:EKSIR_[A-Z_]+={_SAFE_VALUE} )*bash -s"
    rf"(?: -- [0-9a-f]{{1,64}} (?:RUNNING|PAUSED|-) (?:pause|resume|status))? <<'{HEREDOC_END}'"
)


def refusal(commands: list[str]) -> str | None:
    """Why the agent will not run these `commands`, or None when they are exactly one of eksir's scripts."""
    if len(commands) != 3 or commands[2] != HEREDOC_END or not _FIRST_LINE.fullmatch(commands[0]):
        return "not an eksir command (shape or first line)"
    if commands[1] not in (collection_script(), TASK_SCRIPT):
        return "the script is not one eksir ships"
    return None


@dataclass(frozen=True)
class AgentConfig:
    """Where the agent finds moto, which instance it is, and the node's context for the scripts it runs."""

    instance_id: str
    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str
    containerd_socket: str
    node_dir: str

    @property
    def work_dir(self) -> Path:
        return Path(self.node_dir) / "ssm"


def output_key(prefix: str, command_id: str, instance_id: str, stream: str) -> str:
    """The S3 key the SSM agent writes a command's stdout or stderr to."""
    parts = [p for p in (prefix.strip("/"), command_id, instance_id, PLUGIN_DIR, stream) if p]
    return "/".join(parts)


def node_env(config: AgentConfig) -> dict[str, str]:
    """The environment of a script on the node: the agent's minimal PATH plus the node's `aws`, moto, ctr."""
    bin_dir = Path(config.node_dir) / "bin"
    return {
        "PATH": f"{bin_dir}:{NODE_PATH}",
        "HOME": str(config.work_dir),
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": config.endpoint,
        "AWS_ACCESS_KEY_ID": config.access_key_id,
        "AWS_SECRET_ACCESS_KEY": config.secret_access_key,
        "AWS_DEFAULT_REGION": config.region,
        "CONTAINERD_ADDRESS": config.containerd_socket,
        "EKSIR_WORK_ROOT": str(Path(config.node_dir) / "var-tmp"),
    }


def install_node_tools(node_dir: Path) -> None:
    """The node's `aws` CLI: this environment's awscli (package `awscli`), linked into the node's bin."""
    bin_dir = node_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "var-tmp").mkdir(exist_ok=True)
    aws = Path(sys.executable).parent / "aws"
    link = bin_dir / "aws"
    if aws.is_file() and not link.exists():
        link.symlink_to(aws)


def run_command(config: AgentConfig, command: dict[str, Any], s3: Any) -> int:
    """Run one command's script and upload its output; returns the script's exit code (-1: timed out)."""
    command_id = str(command["CommandId"])
    folder = config.work_dir / command_id
    folder.mkdir(parents=True, exist_ok=True)
    parameters = command.get("Parameters") or {}
    script = folder / "_script.sh"
    script.write_text("\n".join(parameters.get("commands") or []) + "\n", encoding="utf-8")
    timeout = float((parameters.get("executionTimeout") or ["3600"])[0])
    (folder / "status").write_text("InProgress", encoding="utf-8")
    with (folder / "stdout").open("wb") as out, (folder / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            ["bash", str(script)], cwd=folder, env=node_env(config), stdout=out, stderr=err
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -1
    bucket = command.get("OutputS3BucketName")
    if bucket:
        for stream in ("stdout", "stderr"):
            data = (folder / stream).read_bytes()
            if stream == "stdout" or data:
                key = output_key(
                    str(command.get("OutputS3KeyPrefix") or ""), command_id, config.instance_id, stream
                )
                s3.put_object(Bucket=bucket, Key=key, Body=data)
    (folder / "status").write_text("Success" if code == 0 else f"Failed {code}", encoding="utf-8")
    return code


def _run_script(config: AgentConfig, folder: Path, commands: list[str], timeout: float) -> int:
    """The commands as one script run by bash in the node's context; its exit code (-1: timed out)."""
    script = folder / "_script.sh"
    script.write_text("\n".join(commands) + "\n", encoding="utf-8")
    with (folder / "stdout").open("wb") as out, (folder / "stderr").open("wb") as err:
        proc = subprocess.Popen(
            ["bash", str(script)], cwd=folder, env=node_env(config), stdout=out, stderr=err
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -1


def pending(config: AgentConfig, ssm: Any) -> list[dict[str, Any]]:
    """Commands sent to the instance that this agent has not run yet, oldest first."""
    pages = ssm.get_paginator("list_commands").paginate(InstanceId=config.instance_id)
    commands = [c for page in pages for c in page.get("Commands", [])]
    fresh = [
        c
        for c in commands
        if c.get("DocumentName") == DOCUMENT
        and not (config.work_dir / str(c["CommandId"]) / "status").exists()
    ]
    return sorted(fresh, key=lambda c: str(c.get("RequestedDateTime", "")))


def serve(config: AgentConfig) -> None:
    """Poll for commands and run them one at a time, forever (stopped by `lab down`)."""
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region,
    )
    ssm = session.client("ssm", endpoint_url=config.endpoint)
    s3 = session.client("s3", endpoint_url=config.endpoint)
    while True:
        try:
            for command in pending(config, ssm):
                run_command(config, command, s3)
        except (BotoCoreError, ClientError) as exc:  # moto busy or restarting: try again, say so in the log
            print(f"ssm-agent: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        time.sleep(POLL_S)


def start(config: AgentConfig) -> processes.ProcessRecord:
    """Start the agent as a recorded lab process (its config beside it), so `lab down` stops it."""
    node_dir = Path(config.node_dir)
    install_node_tools(node_dir)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / "ssm-agent.json"
    path.write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")
    cmdline = [sys.executable, "-m", "eksir.lab.ssm_agent", str(path)]
    return processes.start_process(node_dir, "lab-ssm-agent", cmdline, 0, node_dir / "ssm-agent.log")


def main(argv: list[str]) -> int:
    """Entry point: `python -m eksir.lab.ssm_agent CONFIG.json`."""
    config = AgentConfig(**json.loads(Path(argv[1]).read_text(encoding="utf-8")))
    os.umask(0o077)
    try:
        serve(config)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
