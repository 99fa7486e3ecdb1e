"""`eksir lab doctor`: the doctor against the running lab, with the lab's own limits said as such.

Why a lab verb and not a guess inside `eksir doctor`: only the caller knows it drives the lab (DESIGN.md,
"Lab modes"), exactly as the game day hands the engine its lab mode. What the lab cannot provide (a CNI that
enforces NetworkPolicy, moto's missing IAM simulator and SSM managed-instance registry) is reported
`unavailable-in-lab` with the reason, never as a failure; everything else must pass as it would on EKS,
so a removed ClusterRole binding or audit logging switched off still fails with its fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from eksir.cli.doctor_cmd import report
from eksir.cli.lab_cmd import LabDirOption, lab_app
from eksir.cli.options import OutputFormat, OutputOption
from eksir.lab import lab
from eksir.lab.limits import DOCTOR_UNAVAILABLE


@lab_app.command("doctor")
def lab_doctor_cmd(
    lab_dir: LabDirOption = lab.DEFAULT_LAB_DIR,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="who asks (default: the lab's admin kubeconfig)")
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Run `eksir doctor` against the lab: its cluster, its moto account, its evidence bucket."""
    from eksir.cli.respond_cmd import Access  # noqa: PLC0415 - the same access path as the response
    from eksir.preflight.run import Target, run_doctor  # noqa: PLC0415

    state = lab.load_state(lab_dir)
    os.environ.update(state.endpoint.env())  # the lab's account keys: this process acts in the lab only
    config = kubeconfig or Path(state.admin_kubeconfig)
    access = Access(state.region, None, state.aws_endpoint, config, None)
    aws = access.aws()
    target = Target(aws, state.cluster, access.kube(aws, state.cluster), state.evidence_bucket)
    report(state.cluster, run_doctor(target, DOCTOR_UNAVAILABLE), output)
