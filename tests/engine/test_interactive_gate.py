"""The interactive gate reads well at 3 a.m.: literal options, re-asks what it does not understand, shows
details on `d`, `a`/`q` for every remaining prompt, and asks the most urgent waiting step first."""

from __future__ import annotations

import builtins
import io
import threading
from datetime import UTC, datetime

import pytest
from rich.console import Console

from eksir.actions.base import ActionSpec, CheckOutcome, Phase, PlannedChange
from eksir.cli.run_progress import approval_summary
from eksir.engine.approval import ApprovalRequest, StepListGate
from eksir.engine.interactive import OPTIONS, InteractiveGate
from eksir.playbooks.plan import Plan, PlanStep


def _request(
    step_id: str, action_id: str = "k8s.cordon_node", phase: Phase = Phase.CONTAINMENT
) -> ApprovalRequest:
    step = PlanStep(
        id=step_id,
        action_id=action_id,
        params={"name": "[bold]node-1[/bold]"},
        requires_approval=True,
        phase=phase,
        rationale="test",
    )
    spec = ActionSpec(id=action_id, phase=phase, title="t", destructive=True)
    return ApprovalRequest(step, spec, CheckOutcome(ok=True, detail="ok"), PlannedChange(summary="change"))


def _gate(answers: list[str], out: io.StringIO | None = None) -> tuple[InteractiveGate, list[str]]:
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        if not answers:
            raise EOFError
        return answers.pop(0)

    return InteractiveGate("alice@laptop", Console(file=out or io.StringIO(), width=200), ask=ask), asked


def test_an_answer_it_does_not_understand_asks_again_instead_of_declining() -> None:
    gate, asked = _gate(["?", "yes"])
    decision = gate.decide(_request("s1"))
    assert (decision.approved, decision.approver, decision.how) == (True, "alice@laptop", "interactive")
    assert asked == [f"Apply s1? {OPTIONS} (default n): "] * 2


def test_details_show_the_parameters_as_text_and_then_ask_again() -> None:
    out = io.StringIO()
    gate, asked = _gate(["d", "n"], out)
    decision = gate.decide(_request("s1"))
    assert not decision.approved
    assert decision.reason == "declined at the prompt"
    assert '"name": "[bold]node-1[/bold]"' in out.getvalue()  # hostile markup printed literally
    assert len(asked) == 2


def test_all_remaining_approves_this_and_later_steps_without_asking() -> None:
    gate, asked = _gate(["a"])
    first, second = gate.decide(_request("s1")), gate.decide(_request("s2"))
    assert first.approved
    assert second.approved
    assert second.how == "interactive:all-remaining"
    assert len(asked) == 1


def test_quit_declines_this_and_every_later_step_and_end_of_input_is_no() -> None:
    gate, asked = _gate(["q"])
    assert not gate.decide(_request("s1")).approved
    assert gate.decide(_request("s2")).reason == "declined: quit at an earlier prompt"
    assert len(asked) == 1
    silent, _ = _gate([])
    assert silent.decide(_request("s3")).reason == "declined at the prompt"


def test_the_prompt_shows_its_options_literally_on_a_real_console(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(builtins, "input", lambda *_args: "y")
    gate = InteractiveGate("alice@laptop", Console(file=out, width=200))
    assert gate.decide(_request("s06-k8s.cordon_node")).approved
    assert f"Apply s06-k8s.cordon_node? {OPTIONS} (default n): " in out.getvalue()


def test_steps_waiting_together_are_asked_most_urgent_first() -> None:
    gate, asked = _gate(["y", "y", "y", "y"])
    requests = [
        _request("other", "iam.delete_user", Phase.RECOVERY),
        _request("cordon"),
        _request("isolate", "k8s.isolate_pod"),
        _request("capture", "ssm.capture_volatile", Phase.EVIDENCE),
    ]
    start = threading.Barrier(len(requests))

    def decide(request: ApprovalRequest) -> None:
        start.wait()
        gate.decide(request)

    threads = [threading.Thread(target=decide, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert [prompt.split("?")[0] for prompt in asked] == [
        "Apply capture",
        "Apply isolate",
        "Apply cordon",
        "Apply other",
    ]


def test_approve_step_approves_exactly_the_named_steps() -> None:
    gate = StepListGate(frozenset({"s1"}), "runbook@ci")
    assert gate.decide(_request("s1")).approved
    declined = gate.decide(_request("s2"))
    assert not declined.approved
    assert declined.reason == "needs approval; not named by --approve-step"
    harmless = _request("s3").step.model_copy(update={"requires_approval": False})
    request = _request("s3")
    evidence = ApprovalRequest(
        harmless,
        request.spec.__class__(id="x.read", phase=Phase.EVIDENCE, title="t"),
        request.check,
        request.change,
    )
    assert gate.decide(evidence).how == "auto:non-destructive"


def test_the_summary_counts_the_steps_that_will_ask() -> None:
    plan = Plan(
        playbook="t",
        finding_id="f",
        created_at=datetime.now(UTC),
        steps=(
            _request("s1", "ssm.capture_volatile", Phase.EVIDENCE).step.model_copy(
                update={"requires_approval": False}
            ),
            _request("s2", "k8s.isolate_pod").step,
            _request("s3", "ec2.isolate_instance").step,
        ),
    )
    assert approval_summary(plan) == "3 steps, 2 need you: s2, s3"


def test_the_summary_says_apart_which_steps_the_outage_check_blocks() -> None:
    plan = Plan(playbook="t", finding_id="f", created_at=datetime.now(UTC), steps=(
        PlanStep(id="s1", action_id="ec2.snapshot_volumes", phase=Phase.EVIDENCE),
        PlanStep(id="s2", action_id="k8s.isolate_pod", phase=Phase.CONTAINMENT, requires_approval=True,
                 outage_blocks=("pod default/web-1: the only ready replica",)),
        PlanStep(id="s3", action_id="k8s.cordon_node", phase=Phase.CONTAINMENT, requires_approval=True),
    ))  # fmt: skip
    assert approval_summary(plan) == "3 steps, 1 need you: s3; 1 blocked by the outage check: s2"
    assert approval_summary(plan, outage_overridden=True) == "3 steps, 2 need you: s2, s3"
