"""`eksir plan | respond | status | resume | rollback`: the responder's verbs around the engine.

`plan` is a dry run (resolve online, build the plan, preview each step's diff and blast radius, record it in
the case); `respond` does the same and then runs it behind an approval gate; `resume` continues a case's
run after a crash or a declined prompt; `rollback` undoes applied steps newest first. Nothing destructive
is applied without an approval: with no terminal and no `--approve` policy, only non-destructive steps run.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from eksir.cli.accounts import AccountAccess, HomeClients, load_role_map
from eksir.cli.anchoring import anchor_phase, publishers
from eksir.cli.break_glass import carry_grant, grant_plan
from eksir.cli.finding_trust import TrustFindingOpt, gate_for_finding, guardduty_in, recorded_gate, refusal
from eksir.cli.options import (
    DEFAULT_CASES_DIR,
    AssumeRoleOpt,
    CasesDirOption,
    ContextOpt,
    EndpointOpt,
    EvidenceBucketOpt,
    ExternalIdOpt,
    KubeconfigOpt,
    MaxInputOption,
    OutputFormat,
    OutputOption,
    ProfileOpt,
    ReasonOption,
    RegionOpt,
    ReopenOption,
    RoleMapOpt,
    SnsOpt,
    WaitOption,
    WebhookOpt,
    print_document,
    require_yes,
)
from eksir.cli.reach import explained, reach_note
from eksir.cli.respond_view import plan_document, render_plan, render_state, state_document
from eksir.cli.rollback_view import describe, restores_access
from eksir.cli.run_progress import ProgressPrinter, approval_summary
from eksir.cli.scope_plan import resolve_and_plan
from eksir.cli.triage_cmd import handled_findings, read_input_bytes
from eksir.clients.assume import RoleMap
from eksir.clients.aws import AwsClients
from eksir.engine import (
    ApprovalGate,
    ApprovalPolicy,
    DenyAllGate,
    InteractiveGate,
    PolicyGate,
    Runner,
    RunState,
    StateStore,
    StepListGate,
    StepRecord,
    StepStatus,
    rollback,
    rollback_targets,
)
from eksir.engine.context import ContextFactory, KubeProvider
from eksir.engine.guards import OVERRIDE_OPTION, OutageOverride, outage_blocked
from eksir.engine.observers import Observers
from eksir.engine.preview import preview_plan
from eksir.engine.tracks import Track, TrackName, track_named
from eksir.errors import BadInputError, PermissionDeniedError, RefusedError, StepFailedError, UsageError
from eksir.findings import read_findings
from eksir.findings.limits import DEFAULT_MAX_INPUT_BYTES
from eksir.models.finding import Finding
from eksir.notify import SnsChannel, WarRoom, WebhookChannel
from eksir.notify.channels import Channel
from eksir.playbooks import Plan, PlaybookOptions
from eksir.resolve.finding_check import FindingCheck
from eksir.safetext import plain_console
from eksir.store import CaseHandle, CaseStore
from eksir.store.frozen import reopening
from eksir.triage.case import finding_evidence

FindingArg = Annotated[str, typer.Argument(help="finding file (JSON, JSON lines, gzip) or - for stdin")]
CaseArg = Annotated[str, typer.Argument(help="case id (under --cases-dir) or case directory")]
BreakGlassOpt = Annotated[
    Path | None,
    typer.Option(
        "--break-glass-kubeconfig",
        help="a cluster admin's kubeconfig, used only to add the break-glass aws-auth mapping",
    ),
]
FindingIdOpt = Annotated[str | None, typer.Option("--finding-id", help="which finding of the input")]
OrphanPodOpt = Annotated[bool, typer.Option("--orphan-pod", help="also detach the pod from its owner")]
PauseContainerOpt = Annotated[bool, typer.Option("--pause-container", help="pause after capture")]
StrictIsolationOpt = Annotated[
    bool, typer.Option("--strict-isolation", help="isolate the node with no egress at all from the start")
]
IsolateSubnetOpt = Annotated[
    bool,
    typer.Option("--isolate-subnet", help="also a deny-all network ACL on the node's subnets (whole subnet)"),
]
CheckpointOpt = Annotated[
    bool,
    typer.Option(
        "--checkpoint",
        help="also checkpoint each container through the kubelet (CRIU) where the node's preflight allows",
    ),
]
WorkersOpt = Annotated[int, typer.Option("--max-workers", min=1, max=16, help="steps run in parallel")]


@dataclass(frozen=True)
class Access:
    """How to reach AWS and the cluster, and who to tell: the options every verb that acts shares."""

    region: str | None
    profile: str | None
    endpoint_url: str | None
    kubeconfig: Path | None
    context: str | None
    webhook_url: str | None = None
    sns_topic_arn: str | None = None
    break_glass_kubeconfig: Path | None = None
    roles: RoleMap = field(default_factory=RoleMap)
    operator: str | None = None
    homes: HomeClients | None = None
    """Set by `eksir serve`: the home clients kept across cases (cli/accounts.py, HomeClients)."""

    def aws(self, region: str | None = None) -> AwsClients:
        """Home: the caller's own account (GuardDuty's administrator, the war room, the evidence bucket)."""
        return self.accounts().home(region)

    def accounts(self) -> AccountAccess:
        """Which account each call goes to (cli/accounts.py): home, or the incident's through a role."""
        return AccountAccess(
            self.region, self.profile, self.endpoint_url, self.roles, self.operator, self.homes
        )

    def with_roles(self, roles: RoleMap, operator: str, *, keep_home_clients: bool = False) -> Access:
        """These roles and operator; `keep_home_clients` (a long-running worker) makes the caller's own
        clients once for every case instead of per case."""
        from dataclasses import replace  # noqa: PLC0415

        homes = HomeClients() if keep_home_clients else self.homes
        return replace(self, roles=roles, operator=operator, homes=homes)

    def kube(self, aws: AwsClients, cluster: str | None) -> KubeProvider:
        return KubeProvider(aws=aws, cluster_name=cluster, kubeconfig=self.kubeconfig, context=self.context)

    def war_room(self, case: CaseHandle, aws: AwsClients) -> WarRoom | None:
        channels: list[Channel] = []
        if self.webhook_url:
            channels.append(WebhookChannel(self.webhook_url))
        if self.sns_topic_arn:
            channels.append(SnsChannel(aws("sns"), self.sns_topic_arn))
        return WarRoom(case, channels) if channels else None


def _stderr() -> Console:
    return plain_console(stderr=True)


def _pick(findings: list[Finding], finding_id: str | None) -> Finding:
    if finding_id:
        for finding in findings:
            if finding.id == finding_id:
                return finding
        raise BadInputError(f"the input holds no handled finding with id {finding_id}")
    if len(findings) > 1:
        ids = ", ".join(f.id for f in findings[:5])
        raise BadInputError(
            f"the input holds {len(findings)} findings ({ids}...): choose one with --finding-id"
        )
    return findings[0]


@dataclass
class _Prepared:
    case: CaseHandle
    case_id: str
    aws: AwsClients
    kube: KubeProvider
    plan: Plan
    war_room: WarRoom | None
    finding: Finding
    home: AwsClients | None = None
    reach: str | None = None


@dataclass(frozen=True)
class _Writer:
    """Which command holds the case's writer lease, and where it is held until the command ends."""

    command: str
    wait: bool
    stack: ExitStack


def _prepare(
    finding_file: str,
    finding_id: str | None,
    cases_dir: Path,
    access: Access,
    options: PlaybookOptions,
    *,
    writer: _Writer,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> _Prepared:
    """Open the case and take its writer lease, resolve online, store the resolution, build the plan."""
    raw, input_name = read_input_bytes(finding_file, max_input_bytes)
    everything = read_findings(raw, max_bytes=max_input_bytes)
    finding = _pick(handled_findings(everything, _stderr()), finding_id)
    access.accounts().route(finding.account_id, finding.region)  # refuses before the case opens
    evidence, info = finding_evidence(finding, raw, input_name, len(everything))
    case, created = CaseStore(cases_dir).open_for_finding(finding, evidence, input_name, info)
    writer.stack.enter_context(case.writer(writer.command, wait=writer.wait))
    return prepare_case(case, created, finding, access, options)


def prepare_case(
    case: CaseHandle, created: bool, finding: Finding, access: Access, options: PlaybookOptions
) -> _Prepared:
    """For an open case whose writer lease the caller holds: route, tell the war room, resolve, plan.

    Shared by `respond` and the fleet worker (cli/serve_case.py), so both plan a finding the same way."""
    route = access.accounts().route(finding.account_id, finding.region)
    case_id = case.load().id
    aws, home = route.clients(case_id), access.aws(finding.region)
    war_room = access.war_room(case, home)
    if war_room:
        cluster = finding.cluster.name if finding.cluster else None
        war_room.case_opened(case_id, finding.title or finding.type, cluster, created)
    kube = access.kube(aws, finding.cluster.name if finding.cluster else None)
    grant = grant_plan(finding, aws, kube, case, access.break_glass_kubeconfig)
    if grant is not None:  # no Kubernetes access yet: the plan is the break-glass step alone
        return _Prepared(case, case_id, aws, kube, grant, war_room, finding, home)
    note = reach_note(finding.cluster.name if finding.cluster else None, aws, kube, case)
    with explained(note):
        plan = carry_grant(resolve_and_plan(finding, aws, kube, case, _with_case(options, case_id)), case)
    return _Prepared(case, case_id, aws, kube, plan, war_room, finding, home, note)


def _with_case(options: PlaybookOptions, case_id: str) -> PlaybookOptions:
    from dataclasses import replace  # noqa: PLC0415

    return replace(options, case_id=case_id)


def _options(  # noqa: PLR0917 - one positional per plan flag, in the CLI's order
    bucket: str | None, orphan: bool, pause: bool, strict: bool, subnet: bool, checkpoint: bool = False
) -> PlaybookOptions:
    """The responder's plan choices (flags shared by plan and respond)."""
    return PlaybookOptions(
        checkpoint=checkpoint,
        evidence_bucket=bucket,
        orphan_pod=orphan,
        pause_container=pause,
        strict_isolation=strict,
        isolate_subnet=subnet,
    )


def plan_cmd(
    finding_file: FindingArg,
    *,
    finding_id: FindingIdOpt = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    break_glass_kubeconfig: BreakGlassOpt = None,
    evidence_bucket: EvidenceBucketOpt = None,
    orphan_pod: OrphanPodOpt = False,
    pause_container: PauseContainerOpt = False,
    strict_isolation: StrictIsolationOpt = False,
    isolate_subnet: IsolateSubnetOpt = False,
    ckpt: CheckpointOpt = False,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    max_input_bytes: MaxInputOption = DEFAULT_MAX_INPUT_BYTES,
) -> None:
    """Dry run: resolve the finding online, build the response plan, preview every step. Changes nothing."""
    access = Access(
        region, profile, endpoint_url, kubeconfig, context, break_glass_kubeconfig=break_glass_kubeconfig
    ).with_roles(load_role_map(assume_role, external_id, role_map), CaseStore(cases_dir).actor)
    options = _options(evidence_bucket, orphan_pod, pause_container, strict_isolation, isolate_subnet, ckpt)
    with ExitStack() as stack:
        writer = _Writer("eksir plan", wait, stack)
        _plan(
            finding_file,
            finding_id,
            cases_dir,
            access,
            options,
            writer=writer,
            output=output,
            max_input_bytes=max_input_bytes,
        )


def _plan(
    finding_file: str,
    finding_id: str | None,
    cases_dir: Path,
    access: Access,
    options: PlaybookOptions,
    *,
    writer: _Writer,
    output: OutputFormat,
    max_input_bytes: int,
) -> None:
    """The plan verb under the case's writer lease (held by `writer.stack` until the command ends)."""
    prepared = _prepare(
        finding_file, finding_id, cases_dir, access, options, writer=writer, max_input_bytes=max_input_bytes
    )
    ctx = ContextFactory(prepared.case_id, prepared.aws, prepared.kube, dry_run=True)
    previews = preview_plan(prepared.plan, ctx)
    document = plan_document(prepared.case_id, prepared.plan, previews)
    if prepared.reach:
        document["endpoint_reach"] = prepared.reach
    prepared.case.write_document(
        "plan-preview.json", orjson.dumps(document, option=orjson.OPT_INDENT_2), "plan"
    )
    prepared.case.append("plan.proposed", {"plan_digest": prepared.plan.digest(), "steps": len(previews)})
    if output.structured:
        print_document(output, document)
    else:
        render_plan(plain_console(), prepared.case_id, prepared.plan, previews)


def choose_gate(
    approve: ApprovalPolicy | None,
    yes: bool,
    interactive: bool,
    actor: str,
    steps: list[str] | None = None,
) -> ApprovalGate:
    """Map `--approve`/`--approve-step`/`--yes` and whether a person is at a terminal to a gate (see the
    module docstring)."""
    if steps:
        if approve is not None:
            raise UsageError("--approve-step names the approved steps: do not combine it with --approve")
        return StepListGate(frozenset(steps), actor)
    if yes and approve in (None, ApprovalPolicy.ALL):
        return PolicyGate(ApprovalPolicy.ALL, actor)
    require_yes(approve, yes)
    if approve is ApprovalPolicy.NON_DESTRUCTIVE:
        return PolicyGate(approve, actor)
    if approve is ApprovalPolicy.NONE:
        return InteractiveGate(actor, _stderr(), ask_all=True) if interactive else DenyAllGate(actor)
    if interactive:
        return InteractiveGate(actor, _stderr())
    _stderr().print("eksir: no terminal and no --approve: only non-destructive steps will run")
    return PolicyGate(ApprovalPolicy.NON_DESTRUCTIVE, actor)


ApproveOpt = Annotated[
    ApprovalPolicy | None,
    typer.Option("--approve", help="approve by policy instead of prompting: all | non-destructive | none"),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="confirm --approve all (or approve everything)")]
ApproveStepOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--approve-step", help="approve this step by id (repeatable); others needing approval decline"
    ),
]
OverrideOutageOpt = Annotated[
    str | None,
    typer.Option(
        "--override-outage",
        metavar="REASON",
        help="run the steps the outage check blocks (it predicts taking a service down); "
        "the reason and approver are recorded in the case",
    ),
]
ApproverOpt = Annotated[
    str | None, typer.Option("--approver", help="name recorded as the approver (default: user@host)")
]


def _progress(
    gate: ApprovalGate, plan: Plan, state: RunState | None, override: OutageOverride | None = None
) -> ProgressPrinter | None:
    """At a terminal: the approval summary now, and each step's result as it lands."""
    if not (isinstance(gate, InteractiveGate) or sys.stderr.isatty()):
        return None
    console = _stderr()
    summary = approval_summary(plan, state, outage_overridden=override is not None)
    console.print(summary, markup=False, highlight=False)
    return ProgressPrinter(console)


def respond_cmd(
    finding_file: FindingArg,
    *,
    approve: ApproveOpt = None,
    approve_step: ApproveStepOpt = None,
    approver: ApproverOpt = None,
    yes: YesOpt = False,
    finding_id: FindingIdOpt = None,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    break_glass_kubeconfig: BreakGlassOpt = None,
    evidence_bucket: EvidenceBucketOpt = None,
    orphan_pod: OrphanPodOpt = False,
    pause_container: PauseContainerOpt = False,
    strict_isolation: StrictIsolationOpt = False,
    isolate_subnet: IsolateSubnetOpt = False,
    ckpt: CheckpointOpt = False,
    webhook_url: WebhookOpt = None,
    sns_topic_arn: SnsOpt = None,
    max_workers: WorkersOpt = 4,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    trust_finding_file: TrustFindingOpt = False,
    max_input_bytes: MaxInputOption = DEFAULT_MAX_INPUT_BYTES,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
    override_outage: OverrideOutageOpt = None,
) -> None:
    """Resolve, plan and run the response; destructive steps need approval and GuardDuty's confirmation."""
    operator = approver or CaseStore(cases_dir).actor
    access = Access(
        region, profile, endpoint_url, kubeconfig, context, webhook_url, sns_topic_arn, break_glass_kubeconfig
    ).with_roles(load_role_map(assume_role, external_id, role_map), operator)
    asker = choose_gate(approve, yes, sys.stdin.isatty(), operator, approve_step)
    run = (max_workers, outage_override(override_outage, operator))
    options = _options(evidence_bucket, orphan_pod, pause_container, strict_isolation, isolate_subnet, ckpt)
    with ExitStack() as stack:
        stack.enter_context(reopening(reopen, reason))
        prepared = _prepare(
            finding_file,
            finding_id,
            cases_dir,
            access,
            options,
            writer=_Writer("eksir respond", wait, stack),
            max_input_bytes=max_input_bytes,
        )
        state, check = _run_response(prepared, asker, access, run, trust_finding_file)
        home = prepared.home or prepared.aws
        anchor_phase(prepared.case, "respond", publishers(prepared.war_room, home, evidence_bucket))
    _finish_response(prepared.plan, state, output, refusal(check))


def _finish_response(plan: Plan, state: RunState, output: OutputFormat, refused: str | None) -> None:
    if plan.playbook == "break-glass":
        _stderr().print(
            "eksir: break-glass step run: once verified, run `eksir respond` again to resolve and respond"
        )
    _finish(state, output, "response", blocked=refused)


def _run_response(
    prepared: _Prepared,
    asker: ApprovalGate,
    access: Access,
    run: tuple[int, OutageOverride | None],
    trust_finding_file: bool,
) -> tuple[RunState, FindingCheck | None]:
    """Confirm the finding with GuardDuty (it decides what the gate may approve), then run the plan."""
    gate, check = gate_for_finding(
        prepared.case,
        prepared.finding,
        asker,
        guardduty_in(access.profile, access.endpoint_url),
        trust_finding_file,
    )
    ctx = ContextFactory(prepared.case_id, prepared.aws, prepared.kube, dry_run=False)
    max_workers, override = run
    watchers = Observers([prepared.war_room, _progress(asker, prepared.plan, None, override)])
    runner = Runner(
        prepared.case, prepared.plan, ctx, gate, max_workers, observer=watchers, outage_override=override
    )
    return runner.run(), check


def outage_override(reason: str | None, approver: str) -> OutageOverride | None:
    """`--override-outage REASON`: an empty reason is a usage error (exit 2), never an override."""
    if reason is None:
        return None
    if not reason.strip():
        raise UsageError("--override-outage needs a reason (it is recorded in the case)")
    return OutageOverride(reason=reason.strip(), approver=approver)


_RUN_FAILURES = frozenset({StepStatus.FAILED, StepStatus.ROLLBACK_FAILED})
DENIED_KIND = "permission-denied"
"""A step record's `error_kind` when IAM or RBAC refused its call (engine/runner.py)."""


def _finish(
    state: RunState,
    output: OutputFormat,
    what: str,
    failures: frozenset[StepStatus] = _RUN_FAILURES,
    blocked: str | None = None,
) -> None:
    """Print the state; exit REFUSED (12) when `blocked` says why destructive steps did not run, else
    STEP_FAILED (9) when a step ended in one of `failures`, or PERMISSION_DENIED (8) when every such step
    was denied by IAM or RBAC (the fix is the responder's permissions, and the message names the call)."""
    if output.structured:
        print_document(output, state_document(state))
    else:
        render_state(plain_console(), state, f"case {state.case_id}: {what}")
    if blocked:
        raise RefusedError(blocked)
    failed = [r for r in state.steps.values() if r.status in failures]
    if failed and all(r.error_kind == DENIED_KIND for r in failed):
        raise PermissionDeniedError(
            f"{len(failed)} step(s) denied ({failed[0].step_id}: {failed[0].detail}); grant what `eksir "
            f"permissions` prints, then `eksir resume {state.case_id}`"
        )
    if failed:
        raise StepFailedError(
            f"{len(failed)} step(s) failed ({', '.join(r.step_id for r in failed)}); "
            f"see `eksir status {state.case_id}`"
        )
    held = outage_blocked(state)
    if held:
        raise RefusedError(
            f"{len(held)} step(s) blocked by the outage check ({', '.join(held)}): accept the outage with "
            f"`eksir resume {state.case_id} {OVERRIDE_OPTION}` (recorded)"
        )


def status_cmd(
    case_ref: CaseArg,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show each step of the case's plan with its state, detail and approver (reads the case only)."""
    from eksir.report.build import milder_triage_runs  # noqa: PLC0415 - only status reads triage history
    from eksir.store.record import load_record  # noqa: PLC0415

    case = CaseStore(cases_dir).get(case_ref)
    for line in milder_triage_runs(load_record(case)):
        _stderr().print(f"! {line}", markup=False)
    state = StateStore(case).load()
    if output.structured:
        print_document(output, state_document(state))
    else:
        render_state(plain_console(), state, f"case {state.case_id}: status")


def _case_access(case: CaseHandle, access: Access) -> tuple[str, AwsClients, KubeProvider]:
    """The case's incident clients: its account through the configured role (refused without one)."""
    header = case.load()
    aws = access.accounts().route(header.account_id, header.region).clients(header.id)
    return header.id, aws, access.kube(aws, header.cluster_name)


def resume_cmd(
    case_ref: CaseArg,
    *,
    approve: ApproveOpt = None,
    approve_step: ApproveStepOpt = None,
    approver: ApproverOpt = None,
    yes: YesOpt = False,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    webhook_url: WebhookOpt = None,
    sns_topic_arn: SnsOpt = None,
    max_workers: WorkersOpt = 4,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    trust_finding_file: TrustFindingOpt = False,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
    override_outage: OverrideOutageOpt = None,
) -> None:
    """Continue the case's run: interrupted steps are checked before anything is re-applied.

    A finding GuardDuty did not confirm keeps destructive steps blocked (exit 12) unless
    --trust-finding-file."""
    store = CaseStore(cases_dir)
    case = store.get(case_ref)
    access = Access(
        region, profile, endpoint_url, kubeconfig, context, webhook_url, sns_topic_arn
    ).with_roles(load_role_map(assume_role, external_id, role_map), approver or store.actor)
    asker = choose_gate(approve, yes, sys.stdin.isatty(), approver or store.actor, approve_step)
    override = outage_override(override_outage, approver or store.actor)
    with reopening(reopen, reason), case.writer("eksir resume", wait=wait):
        gate, blocked = recorded_gate(case, asker, trust_finding_file)
        stored = StateStore(case).load()
        plan = stored.plan
        case_id, aws, kube = _case_access(case, access)
        war_room = access.war_room(case, access.aws(aws.region))
        watchers = Observers([war_room, _progress(asker, plan, stored, override)])
        ctx = ContextFactory(case_id, aws, kube)
        runner = Runner(case, plan, ctx, gate, max_workers, observer=watchers, outage_override=override)
        state = runner.run(retry_unfinished=True)
        anchor_phase(case, "resume", publishers(war_room, access.aws(aws.region), None))
    _finish(state, output, "resumed", blocked=blocked)


def rollback_cmd(
    case_ref: CaseArg,
    *,
    step: Annotated[str | None, typer.Option("--step", help="roll back only this step")] = None,
    track: Annotated[
        TrackName,
        typer.Option("--track", help="which of the case's plans to undo"),
    ] = TrackName.RESPONSE,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    cases_dir: CasesDirOption = DEFAULT_CASES_DIR,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    endpoint_url: EndpointOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    assume_role: AssumeRoleOpt = None,
    external_id: ExternalIdOpt = None,
    role_map: RoleMapOpt = None,
    output: OutputOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    reopen: ReopenOption = False,
    reason: ReasonOption = None,
) -> None:
    """Undo applied steps (all, newest first, or one with --step) and verify each undo."""
    store = CaseStore(cases_dir)
    case = store.get(case_ref)
    with reopening(reopen, reason), case.writer("eksir rollback", wait=wait):
        roles = load_role_map(assume_role, external_id, role_map)
        access = Access(region, profile, endpoint_url, kubeconfig, context).with_roles(roles, store.actor)
        _rollback(case, step, yes, access, output, track=track_named(track))


def _rollback(
    case: CaseHandle, step: str | None, yes: bool, access: Access, output: OutputFormat, *, track: Track
) -> None:
    recorded = StateStore(case, track).load()
    targets = rollback_targets(recorded, step)
    if not targets:
        raise RefusedError("nothing to roll back: no step of this case has an applied change")
    console = _stderr()
    console.print(f"rolling back {len(targets)} step(s), newest first:", markup=False)
    for sentence in describe(targets, recorded):
        console.print(f"  {sentence}", markup=False, highlight=False)
    if not yes:
        _confirm_rollback(console, targets, recorded)
    case_id, aws, kube = _case_access(case, access)
    state = rollback(case, ContextFactory(case_id, aws, kube), step, track=track)
    anchor_phase(case, "rollback", [])
    _finish(state, output, "rollback", frozenset({StepStatus.ROLLBACK_FAILED}))


def _confirm_rollback(console: Console, targets: list[StepRecord], state: RunState) -> None:
    """At a terminal: each access given back is confirmed on its own, then the whole; anything but yes
    changes nothing. Without a terminal, --yes is required (a usage error otherwise, exit 2)."""
    if not sys.stdin.isatty():
        raise UsageError("rollback changes production: confirm with --yes when not at a terminal")
    for record in targets:
        sentence = restores_access(record, state)
        if sentence and not _yes(console, f"{record.step_id} {sentence}. Give this back? [y/N] "):
            raise RefusedError(f"rollback declined at {record.step_id}; nothing was rolled back")
    if not _yes(console, f"Roll back these {len(targets)} step(s)? [y/N] "):
        raise RefusedError("rollback declined; nothing was rolled back")


def _yes(console: Console, prompt: str) -> bool:
    try:
        return console.input(prompt, markup=False).strip().lower() in {"y", "yes"}
    except (EOFError, KeyboardInterrupt):
        return False


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_cmd)
    app.command("respond")(respond_cmd)
    app.command("status")(status_cmd)
    app.command("resume")(resume_cmd)
    app.command("rollback")(rollback_cmd)
