"""`eksir lab build|up|status|env|down|doctor`: a local lab on real servers (kube-apiserver + etcd + moto).

The lab lives in a folder (default `./.eksir-lab`, git-ignored) so `up` can return while the servers run and
`down` can stop them later from another shell. Progress goes to stderr so `eksir lab env` output can be
`eval`ed and `--output json` stays parseable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eksir.cli.options import OutputFormat, OutputOption, print_document
from eksir.errors import LabError
from eksir.lab import lab
from eksir.lab.processes import ProcessStatus, ProcState
from eksir.lab.scenarios import ScenarioName, get_scenario
from eksir.safetext import line, plain_console

lab_app = typer.Typer(help="A local lab: real kube-apiserver + etcd + moto, seeded with an EKS incident.")

LabDirOption = Annotated[
    Path,
    typer.Option(
        "--lab-dir", envvar="EKSIR_LAB_DIR", help="folder holding the lab's state", show_default=True
    ),
]
ScenarioOption = Annotated[
    str,
    typer.Option("--scenario", help=f"which incident to seed: {', '.join(s.value for s in ScenarioName)}"),
]


def _progress(console: Console) -> lab.Progress:
    start = time.monotonic()

    def report(message: str) -> None:
        """Elapsed time, then the message as plain text (it carries paths and server output)."""
        console.print(line((f"{time.monotonic() - start:6.1f}s", "dim"), f" {message}"), soft_wrap=True)

    return report


@lab_app.command("build")
def build_cmd() -> None:
    """Build kube-apiserver, etcd and kubectl from the pinned Go modules (cached; minutes the first time)."""
    err = plain_console(stderr=True)
    start = time.monotonic()
    binaries = lab.build(_progress(err))
    built = ", ".join(str(path) for path in (binaries.kube_apiserver, binaries.etcd, binaries.kubectl))
    err.print(f"built in {time.monotonic() - start:.1f}s: {built}", markup=False)


@lab_app.command("up")
def up_cmd(
    scenario: ScenarioOption = ScenarioName.IAM_USER.value,
    lab_dir: LabDirOption = lab.DEFAULT_LAB_DIR,
    output: OutputOption = OutputFormat.TABLE,
    incidents: Annotated[
        int,
        typer.Option(
            "--incidents",
            min=1,
            max=500,
            help="fleet scenario: how many attacked pods (half in each member account)",
        ),
    ] = 8,
    enforce_iam: Annotated[
        bool | None,
        typer.Option(
            "--enforce-iam/--no-enforce-iam",
            help="organisation scenarios: moto enforces IAM once seeded, so eksir runs under the generated "
            "policy's actions (default: on for cross-account, off for fleet)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the servers and seed one incident; writes finding.json and ground-truth.json."""
    err = plain_console(stderr=True)
    chosen = get_scenario(scenario)  # BadInputError (one line, exit 3) for an unknown name
    err.print(f"scenario {chosen.name.value}: {chosen.summary}")
    state = lab.up(
        lab_dir,
        chosen.name.value,
        progress=_progress(err),
        fleet_incidents=incidents,
        enforce_iam=enforce_iam,
    )
    if output.structured:
        print_document(output, _public(state))
        return
    out = plain_console()
    out.print(f"lab up in {state.timings.get('total', 0):.1f}s ({state.lab_dir})")
    out.print(f"  kube-apiserver  {state.k8s_server}")
    out.print(f"  aws (moto)      {state.aws_endpoint}")
    if state.organisation.get("iam_enforced") == "true":
        out.print("  iam             enforced: eksir-responder holds the generated actions only")
    out.print(f"  finding         {state.finding}")
    out.print(f"  ground truth    {state.ground_truth}")
    node = state.node_runtime
    if node:
        out.print(f"  attacked node   {node['instance_id']}: containerd {node['socket']} + lab SSM agent")
    else:
        out.print(f"  attacked node   simulated: {state.node_runtime_reason}", markup=False)
    out.print(f'next: eval "$(eksir lab env --lab-dir {lab_dir})"; eksir triage {state.finding}')


def _public(state: lab.LabState) -> dict[str, object]:
    """lab.json minus the secret keys (the lab's, and an organisation's operator and admin), for printing."""
    data = dict(vars(state))
    data.pop("aws_secret_access_key", None)
    data["organisation"] = {k: v for k, v in state.organisation.items() if "secret" not in k}
    return data


@lab_app.command("status")
def status_cmd(
    lab_dir: LabDirOption = lab.DEFAULT_LAB_DIR, output: OutputOption = OutputFormat.TABLE
) -> None:
    """Each lab process running or crashed, and the endpoints; exits non-zero when one crashed."""
    statuses = lab.process_status(lab_dir)
    crashed = [s for s in statuses if s.state is ProcState.EXITED]
    try:
        state: lab.LabState | None = lab.load_state(lab_dir) if statuses else None
    except LabError:
        state = None
    if output.structured:
        print_document(
            output,
            {
                "lab_dir": str(lab_dir.resolve()),
                "up": bool(statuses) and not crashed,
                "processes": [
                    {
                        "name": s.record.name,
                        "pid": s.record.pid,
                        "port": s.record.port,
                        "state": s.state.value,
                    }
                    for s in statuses
                ],
                "endpoints": {"kubernetes": state.k8s_server, "aws": state.aws_endpoint} if state else {},
                "scenario": state.scenario if state else None,
            },
        )
    else:
        _print_status(lab_dir, statuses, state)
    if crashed:
        names = ", ".join(f"{s.record.name} (pid {s.record.pid})" for s in crashed)
        raise LabError(f"lab process crashed: {names}; see the logs in {lab_dir}, then `eksir lab down`")


def _print_status(lab_dir: Path, statuses: list[ProcessStatus], state: lab.LabState | None) -> None:
    out = plain_console()
    if not statuses:
        out.print(f"no lab running in {lab_dir}")
        return
    for s in statuses:
        colour = "green" if s.state is ProcState.RUNNING else "red"
        word = "running" if s.state is ProcState.RUNNING else "crashed"
        out.print(
            line((f"{word:8}", colour), f" {s.record.name:15} pid {s.record.pid:<8} port {s.record.port}")
        )
        if s.log_tail:
            out.print(s.log_tail)
    if state:
        out.print(f"scenario {state.scenario}; kubernetes {state.k8s_server}; aws {state.aws_endpoint}")


@lab_app.command("env")
def env_cmd(
    lab_dir: LabDirOption = lab.DEFAULT_LAB_DIR,
    eks_token: Annotated[
        bool, typer.Option("--eks-token", help="unset KUBECONFIG: eksir then uses an EKS token, as on EKS")
    ] = False,
    admin: Annotated[
        bool, typer.Option("--admin", help="cross-account lab: the management account's admin credentials")
    ] = False,
) -> None:
    """Print `export` lines so the AWS CLI and kubectl reach the lab: eval "$(eksir lab env)".

    A cross-account lab exports the security account's operator and EKSIR_ASSUME_ROLE, no KUBECONFIG."""
    typer.echo(lab.env_exports(lab.load_state(lab_dir), eks_token=eks_token, admin=admin))


@lab_app.command("down")
def down_cmd(lab_dir: LabDirOption = lab.DEFAULT_LAB_DIR) -> None:
    """Stop every lab process by its recorded pid and verify none is left (safe to repeat)."""
    stopped = lab.down(lab_dir)
    plain_console(stderr=True).print(f"lab down: stopped {stopped} process(es) in {lab_dir}")


def register(app: typer.Typer) -> None:
    """Add `eksir lab ...` to the app (`lab doctor` lives in its own module, which adds itself to lab_app)."""
    from eksir.cli import lab_doctor_cmd  # noqa: F401, PLC0415 - importing it registers `lab doctor`

    app.add_typer(lab_app, name="lab")
