"""The choices a plan offers when a step's evidence dependencies end unmet (engine/guards.py asks them).

Why node isolation has one: it waits for the volatile capture (DESIGN.md: volatile evidence dies with the
node's network), so a capture that fails (no SSM registration, agent down, a timeout) used to leave the node
on the network, the attacker's pod still talking, with nothing said. The responder must choose, knowingly:
isolate now and lose what only a live capture keeps, or keep the node reachable until a capture succeeds.
That choice is its own approval (`<step id>:without-evidence`), never implied by approving the isolation.
"""

from __future__ import annotations

from eksir.playbooks.plan import Fallback, PlanStep

ISOLATE_INSTANCE = "ec2.isolate_instance"
EVIDENCE_ACTIONS = frozenset({"ssm.capture_volatile", "ssm.pause_container"})
WITHOUT_EVIDENCE = "without-evidence"
TITLE = "isolate now without volatile evidence"
TRADE_OFF = (
    "the node is cut off now, so the attacker loses the network at once; but the running processes, open "
    "connections and container state that only a live capture records are not collected, and what the "
    "attacker does before a capture succeeds is lost with them. The isolation group keeps tcp/443 to the "
    "SSM endpoints unless --strict-isolation, so a capture may still be retried with `eksir resume` (the "
    "metadata endpoint and that egress stay until it is verified)."
)
DECLINED_RISK = (
    "the node stays on the network with the attacker's pod on it: an open risk until a capture succeeds on "
    f"`eksir resume` or `--approve-step <step id>:{WITHOUT_EVIDENCE}` is given"
)


def offer_isolation_without_evidence(steps: list[PlanStep]) -> list[PlanStep]:
    """Give each node-isolation step that waits for a capture the fallback choice (by the final step ids)."""
    actions = {step.id: step.action_id for step in steps}
    result: list[PlanStep] = []
    for step in steps:
        evidence = tuple(d for d in step.depends_on if actions.get(d) in EVIDENCE_ACTIONS)
        if step.action_id != ISOLATE_INSTANCE or not evidence:
            result.append(step)
            continue
        fallback = Fallback(
            approval_id=f"{step.id}:{WITHOUT_EVIDENCE}",
            without=evidence,
            title=TITLE,
            trade_off=TRADE_OFF,
            declined_risk=DECLINED_RISK.replace("<step id>", step.id),
        )
        result.append(step.model_copy(update={"fallback": fallback}))
    return result
