"""The policy's decision for a finding, and for each step of its plan.

Why two levels: the rule is chosen once per finding (account, OU, cluster, namespace, tags, verdict,
severity, actor kind), then each step is sorted into "runs now" or "waits for approval" by the rule's `auto`
list and the engine's own classification (needs approval = the plan's flag or a destructive action). A step
that waits is never run because time passed: only a recorded approval lets it run (cli/serve_gate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from eksir.models.finding import Finding
from eksir.policy.model import NON_DESTRUCTIVE, ResponsePolicy, Rule


@dataclass(frozen=True)
class FindingFacts:
    """What rules match on, taken from the finding (and the triage verdict, the policy's OU map)."""

    account: str | None
    ous: tuple[str, ...]
    cluster: str | None
    namespace: str | None
    tags: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None
    severity: float | None = None
    actor_kind: str | None = None


def facts_of(finding: Finding, policy: ResponsePolicy, verdict: str | None) -> FindingFacts:
    return FindingFacts(
        account=finding.account_id,
        ous=policy.ou_of(finding.account_id),
        cluster=finding.cluster.name if finding.cluster else None,
        namespace=finding.workload.namespace if finding.workload else None,
        tags=dict(finding.cluster.tags) if finding.cluster else {},
        verdict=verdict,
        severity=finding.severity,
        actor_kind=finding.actor.kind.value if finding.actor else None,
    )


def _any(patterns: tuple[str, ...], value: str | None) -> bool:
    return not patterns or (value is not None and any(fnmatchcase(value, p) for p in patterns))


def matches(rule: Rule, facts: FindingFacts) -> bool:
    """Every field the rule gives matches the facts."""
    m = rule.match
    if not (
        _any(m.accounts, facts.account)
        and (not m.ous or any(_any(m.ous, ou) for ou in facts.ous))
        and _any(m.clusters, facts.cluster)
        and _any(m.namespaces, facts.namespace)
        and _any(tuple(v.value for v in m.verdicts), facts.verdict)
        and _any(m.actor_kinds, facts.actor_kind)
    ):
        return False
    if any(facts.tags.get(key) != value for key, value in m.tags.items()):
        return False
    if m.severity is not None:
        return facts.severity is not None and m.severity.min <= facts.severity <= m.severity.max
    return True


@dataclass(frozen=True)
class Decision:
    """The chosen rule, and for any step whether it runs without approval."""

    rule: Rule
    matched: bool

    def runs_automatically(self, step_id: str, action_id: str, needs_approval: bool) -> bool:
        """True when the rule lets this step run with nobody approving it."""
        for pattern in self.rule.auto:
            if pattern == NON_DESTRUCTIVE:
                if not needs_approval:
                    return True
                continue
            if fnmatchcase(action_id, pattern) or fnmatchcase(step_id, pattern):
                return not needs_approval or self.rule.auto_destructive
        return False

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule.name,
            "matched": self.matched,
            "auto": list(self.rule.auto),
            "auto_destructive": self.rule.auto_destructive,
            "notify": list(self.rule.notify),
            "waits_for_approval": "every other step (destructive steps unless auto_destructive)",
        }


def decide(policy: ResponsePolicy, facts: FindingFacts) -> Decision:
    """The first rule that matches, else the policy's default."""
    for rule in policy.rules:
        if matches(rule, facts):
            return Decision(rule, True)
    return Decision(policy.default, False)
