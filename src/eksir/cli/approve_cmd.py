"""`eksir approve CASE` and `eksir deny CASE`: a decision about waiting steps, written into the case.

Why into the case: the approver may be anywhere (a laptop, a bastion, a chat bot) and the worker that
continues the case anywhere else; the case record is what both read (cli/serve_gate.py). The decision is an
event (`approval.granted` / `approval.denied`) with who decided, which steps (`--step`, repeatable) or every
step that needs approval (`--destructive`), and why. A worker continues the case when it receives the
continuation message this command sends with `--queue-url` (the worker does not poll the cases; without
`--queue-url`, `eksir resume CASE` continues it by hand). `--yes` is required: an approval changes production.
"""

from __future__ import annotations

from typing import Annotated

import typer

from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    CasesDirOption,
    EndpointOpt,
    OutputFormat,
    OutputOption,
    ProfileOpt,
    RegionOpt,
    print_document,
)
from eksir.cli.respond_cmd import CaseArg
from eksir.errors import BadInputError, UsageError

StepOpt = Annotated[list[str] | None, typer.Option("--step", help="a waiting step's id (repeatable)")]
DestructiveOpt = Annotated[
    bool, typer.Option("--destructive", help="every step that waits for approval (destructive ones included)")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="confirm: this decides about production changes")]
ApproverOpt = Annotated[
    str | None, typer.Option("--approver", help="who decides (default: user@host of this process)")
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="why (recorded)")]
QueueUrlOpt = Annotated[
    str | None, typer.Option("--queue-url", help="send a continuation message so a worker continues the case")
]


def _decide(  # noqa: PLR0917 - the two commands' options, passed through
    granted: bool,
    case_ref: str,
    steps: list[str] | None,
    destructive: bool,
    yes: bool,
    approver: str | None,
    reason: str | None,
    cases_dir: CasesDirOption,
    queue: tuple[str | None, str | None, str | None, str | None],
    output: OutputFormat,
) -> None:
    verb = "approve" if granted else "deny"
    if not yes:
        raise UsageError(f"`eksir {verb}` decides about production changes: confirm it with --yes")
    if not steps and not destructive:
        raise UsageError(f"`eksir {verb}` needs --step ID (repeatable) or --destructive")
    from eksir.cli.serve_gate import DENIED, GRANTED  # noqa: PLC0415
    from eksir.engine import StateStore  # noqa: PLC0415
    from eksir.store import CaseStore  # noqa: PLC0415

    store = CaseStore(cases_dir)
    case = store.get(case_ref)
    who = approver or store.actor
    with case.writer(f"eksir {verb}", wait=True):
        known = set(StateStore(case).load().steps) if StateStore(case).exists() else set()
        unknown = sorted(set(steps or ()) - known)
        if unknown:
            raise BadInputError(f"case {case.path.name} has no step {', '.join(unknown)} in its plan")
        event = case.append(
            GRANTED if granted else DENIED,
            {
                "approver": who,
                "steps": sorted(set(steps or ())),
                "destructive": destructive,
                "reason": reason or "",
            },
        )
    document = {"case_id": case.path.name, "decision": event.type, "approver": who, "seq": event.seq}
    queue_url = queue[0]
    if queue_url:
        document["continuation_message_id"] = _continue(case.path.name, who, queue)
    if output.structured:
        print_document(output, document)
    else:
        how = (
            "sent a continuation to the queue"
            if queue_url
            else f"continue with `eksir resume {case.path.name}`"
        )
        typer.echo(f"case {case.path.name}: {event.type} by {who} (event {event.seq}); {how}")


def _continue(case_id: str, who: str, queue: tuple[str | None, str | None, str | None, str | None]) -> str:
    from eksir.clients.aws import AwsClients  # noqa: PLC0415
    from eksir.clients.sqs import Queue, continuation  # noqa: PLC0415

    url, region, profile, endpoint = queue
    assert url is not None
    return Queue(AwsClients(region, profile, endpoint), url).send(continuation(case_id, who))


def approve_cmd(
    case_ref: CaseArg,
    *,
    step: StepOpt = None,
    destructive: DestructiveOpt = False,
    yes: YesOpt = False,
    approver: ApproverOpt = None,
    reason: ReasonOpt = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    queue_url: QueueUrlOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Approve waiting steps of a case (recorded with the approver); a worker or `resume` then runs them."""
    _decide(
        True,
        case_ref,
        step,
        destructive,
        yes,
        approver,
        reason,
        cases_dir,
        (queue_url, region, profile, endpoint_url),
        output,
    )


def deny_cmd(
    case_ref: CaseArg,
    *,
    step: StepOpt = None,
    destructive: DestructiveOpt = False,
    yes: YesOpt = False,
    approver: ApproverOpt = None,
    reason: ReasonOpt = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    queue_url: QueueUrlOpt = None,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Deny waiting steps of a case (recorded with who denied): they stay declined."""
    _decide(
        False,
        case_ref,
        step,
        destructive,
        yes,
        approver,
        reason,
        cases_dir,
        (queue_url, region, profile, endpoint_url),
        output,
    )


def register(app: typer.Typer) -> None:
    app.command("approve")(approve_cmd)
    app.command("deny")(deny_cmd)
