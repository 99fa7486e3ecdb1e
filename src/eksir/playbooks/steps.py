"""Step numbering, phases and approval defaults shared by the playbook's builders.

Why a fixed number per action id: a step id (`s03-k8s.isolate_pod`) appears in the case record, in the
report, in `eksir rollback --step` and in a responder's notes; it should mean the same thing in every case,
whatever other steps the plan happens to contain. The number also encodes the intended order of execution
among independent steps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from eksir.actions.base import Phase
from eksir.playbooks.plan import PlanStep

# Canonical order: evidence that must come first, pod/node containment, identity, node isolation, queries.
# Actions added later share a number with their neighbour (ids differ by action id): no recorded id moves.
STEP_NUMBERS: dict[str, int] = {
    "k8s.checkpoint_container": 0,
    "k8s.collect_node_diagnostic": 1,  # Auto Mode's stand-in for ssm.capture_volatile: never both
    "ssm.capture_volatile": 1,
    "ec2.snapshot_volumes": 2,
    "k8s.isolate_pod": 3,
    "k8s.orphan_pod": 4,
    "k8s.label_node": 5,
    "k8s.cordon_node": 6,
    "k8s.block_node_disruption": 6,
    "ec2.enable_termination_protection": 7,
    "asg.protect_instance": 8,
    "asg.suspend_processes": 8,
    "iam.deactivate_access_key": 9,
    "iam.revoke_role_sessions": 10,
    "eks.delete_access_entry": 11,
    "k8s.remove_aws_auth_entry": 12,
    "k8s.revoke_service_account_grants": 13,
    "k8s.remove_user_bindings": 14,
    "ssm.pause_container": 15,
    "ec2.isolate_instance": 16,
    "k8s.secrets_worklist": 17,
    "logs.audit_actor_changes": 18,
    "ec2.tighten_isolation": 19,
    "ec2.disable_metadata": 20,
    "ec2.deny_subnet_nacl": 21,
    "iam.deny_instance_credentials": 22,
    "iam.revoke_user_sessions": 23,
    "iam.delete_login_profile": 24,
    "iam.break_role_trust": 25,
}

PHASES: dict[str, Phase] = {
    "k8s.checkpoint_container": Phase.EVIDENCE,
    "k8s.collect_node_diagnostic": Phase.EVIDENCE,
    "ssm.capture_volatile": Phase.EVIDENCE,
    "ec2.snapshot_volumes": Phase.EVIDENCE,
    "k8s.secrets_worklist": Phase.EVIDENCE,
    "logs.audit_actor_changes": Phase.EVIDENCE,
}
"""Phase per action id; anything not listed is containment."""

DESTRUCTIVE_ACTIONS: frozenset[str] = frozenset(
    {
        "k8s.isolate_pod",
        "k8s.orphan_pod",
        "k8s.cordon_node",
        "ec2.isolate_instance",
        "ec2.tighten_isolation",
        "ec2.disable_metadata",
        "ec2.deny_subnet_nacl",
        "ssm.pause_container",
        "k8s.checkpoint_container",
        "iam.deactivate_access_key",
        "iam.revoke_role_sessions",
        "eks.delete_access_entry",
        "k8s.remove_aws_auth_entry",
        "k8s.revoke_service_account_grants",
        "k8s.remove_user_bindings",
        "iam.deny_instance_credentials",
        "iam.revoke_user_sessions",
        "iam.delete_login_profile",
        "iam.break_role_trust",
    }
)
"""Steps that change how production behaves (traffic, scheduling, access) and so always need approval.

Labelling, termination/scale-in protection, snapshots and captures only add or preserve; they run without
asking under `--approve non-destructive`. The runner also asks for any action whose spec says destructive.
"""


@dataclass(frozen=True)
class StepDraft:
    """A step before it has its final id: `key` is internal, `after` names other drafts by key."""

    key: str
    action_id: str
    params: dict[str, Any]
    after: tuple[str, ...]
    rationale: str


def number_steps(drafts: list[StepDraft]) -> list[PlanStep]:
    """Give each draft its stable id, translate dependencies, and sort by number."""
    totals = Counter(d.action_id for d in drafts)
    seen: Counter[str] = Counter()
    ids: dict[str, str] = {}
    for draft in drafts:
        seen[draft.action_id] += 1
        number = STEP_NUMBERS.get(draft.action_id, 99)
        suffix = f"-{seen[draft.action_id]}" if totals[draft.action_id] > 1 else ""
        ids[draft.key] = f"s{number:02d}-{draft.action_id}{suffix}"
    steps = [
        PlanStep(
            id=ids[d.key],
            action_id=d.action_id,
            params=d.params,
            depends_on=tuple(ids[k] for k in d.after),
            requires_approval=d.action_id in DESTRUCTIVE_ACTIONS,
            phase=PHASES.get(d.action_id, Phase.CONTAINMENT),
            rationale=d.rationale,
        )
        for d in drafts
    ]
    return sorted(steps, key=lambda s: (STEP_NUMBERS.get(s.action_id, 99), s.id))
