"""`eksir policy check FILE` and `eksir policy explain FINDING`: the response policy before it is deployed.

`check` prints `FILE:LINE: message` and exits 3 on the first problem (YAML, unknown key, wrong type), so an
editor or CI jumps to the line. `explain` shows which rule a finding meets and, for every action the
playbook may plan, whether it would run automatically or wait for approval.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from eksir.cli.options import OutputFormat, OutputOption, print_document
from eksir.errors import BadInputError, ExitCode

policy_app = typer.Typer(help="Check a response policy file; explain its decision for a finding.")
PolicyFileArg = Annotated[Path, typer.Argument(help="response policy YAML")]
PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", envvar="EKSIR_POLICY", help="response policy YAML")
]


@policy_app.command("check")
def check_cmd(policy_file: PolicyFileArg) -> None:
    """Validate a response policy: `FILE:LINE: message` and exit 3 on the first problem."""
    from eksir.policy import load_policy  # noqa: PLC0415

    try:
        policy = load_policy(policy_file)
    except BadInputError as exc:
        sys.stderr.write(exc.message.replace("\n", " ")[:1000] + "\n")
        raise typer.Exit(int(ExitCode.BAD_INPUT)) from None
    typer.echo(f"{policy_file}: ok ({len(policy.rules)} rule(s) and the default)")


@policy_app.command("explain")
def explain_cmd(
    finding_file: Annotated[str, typer.Argument(help="finding file (JSON, JSON lines, gzip) or -")],
    policy: PolicyOpt = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Which rule the finding meets, who is told, and for each action: automatic or waits for approval."""
    from eksir.cli.triage_cmd import read_input_bytes  # noqa: PLC0415
    from eksir.findings import read_findings  # noqa: PLC0415
    from eksir.findings.family import require_handled  # noqa: PLC0415
    from eksir.policy import decide, facts_of, load_policy  # noqa: PLC0415
    from eksir.policy.model import DEFAULT_POLICY  # noqa: PLC0415
    from eksir.triage import load_triage_config  # noqa: PLC0415
    from eksir.triage.verdict import triage_finding  # noqa: PLC0415

    chosen = load_policy(policy) if policy else DEFAULT_POLICY
    raw, name = read_input_bytes(finding_file, 64 << 20)
    documents = []
    for finding in require_handled(read_findings(raw, name=name)):
        verdict = triage_finding(finding, load_triage_config(None)).decision.value
        facts = facts_of(finding, chosen, verdict)
        decision = decide(chosen, facts)
        documents.append(
            {
                "finding_id": finding.id,
                "facts": vars(facts),
                "decision": decision.to_json(),
                "actions": _actions(decision),
            }
        )
    if output.structured:
        print_document(output, documents if len(documents) > 1 else documents[0])
        return
    for doc in documents:
        _print_table(doc)


def _actions(decision: Any) -> list[dict[str, Any]]:
    from eksir.actions.registry import load_all  # noqa: PLC0415

    rows = []
    for cls in sorted(load_all().values(), key=lambda c: c.spec.id):
        spec = cls.spec
        auto = decision.runs_automatically(spec.id, spec.id, spec.destructive)
        rows.append({"action": spec.id, "destructive": spec.destructive, "runs": "auto" if auto else "waits"})
    return rows


def _print_table(doc: dict[str, Any]) -> None:
    from eksir.safetext import plain_console  # noqa: PLC0415

    out = plain_console()
    decision = doc["decision"]
    how = "matched" if decision["matched"] else "no rule matched: the default"
    out.print(f"finding {doc['finding_id']}: rule {decision['rule']!r} ({how})", markup=False)
    facts = "; ".join(
        f"{k} {v if not isinstance(v, tuple | list) else ', '.join(v)}" for k, v in doc["facts"].items()
    )
    out.print(f"  facts: {facts}", markup=False, highlight=False)
    out.print(f"  notify: {', '.join(decision['notify']) or '(nobody extra)'}", markup=False)
    for row in doc["actions"]:
        kind = "destructive" if row["destructive"] else "non-destructive"
        out.print(f"  {row['runs']:5}  {row['action']:40} {kind}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
