"""Rollback says in words what it gives back (issue: one `y` re-enabled the attacker's access key)."""

from __future__ import annotations

from datetime import UTC, datetime

from eksir.actions.base import Phase
from eksir.cli.rollback_view import describe, restores_access
from eksir.engine.state import fresh_state
from eksir.playbooks.plan import Plan, PlanStep


def _state() -> tuple[object, list]:
    steps = (
        PlanStep(
            id="s01-iam.deactivate_access_key",
            action_id="iam.deactivate_access_key",
            params={"user_name": "ci-deployer", "access_key_id": "AKIAATTACKER00000001"},
            phase=Phase.CONTAINMENT,
        ),
        PlanStep(
            id="s03-k8s.isolate_pod",
            action_id="k8s.isolate_pod",
            params={"namespace": "default", "pod_name": "miner", "pod_uid": "u"},
            phase=Phase.CONTAINMENT,
        ),
        PlanStep(
            id="s07-k8s.label_node",
            action_id="k8s.label_node",
            params={"node_name": "n"},
            phase=Phase.CONTAINMENT,
        ),
    )
    plan = Plan(playbook="t", finding_id="f", created_at=datetime.now(UTC), steps=steps)
    state = fresh_state("case", plan)
    return state, list(reversed(list(state.steps.values())))


def test_each_step_that_gives_access_back_is_named_in_words() -> None:
    state, targets = _state()
    assert describe(targets, state) == [  # type: ignore[arg-type]
        "s07-k8s.label_node: undoes k8s.label_node",
        "s03-k8s.isolate_pod: lifts the network quarantine of pod default/miner",
        "s01-iam.deactivate_access_key: re-activates access key AKIAATTACKER00000001 of IAM user ci-deployer",
    ]
    assert restores_access(targets[0], state) is None  # type: ignore[arg-type]
