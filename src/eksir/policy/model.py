"""The response policy's shape (pydantic, `extra="forbid"`): the trust boundary for a file people edit.

Why data and not flags: a security team decides once, per account, OU, cluster, namespace, verdict,
severity and actor kind, what a worker may do at 3 a.m. without anyone awake; the file is reviewed like code
and `eksir policy check` rejects a typo (an unknown key, a severity out of range) with its line number.

Why `auto` never reaches a destructive step by itself: the word `non-destructive` means exactly the steps the
engine classifies as needing no approval; a destructive action id in `auto` runs only when the rule also says
`auto_destructive: true`, so loosening the default is explicit and visible in review.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

NON_DESTRUCTIVE = "non-destructive"
"""In `auto`: every step the engine classifies as needing no approval (evidence, snapshots, labels, cordon,
pod isolation)."""


class Verdict(StrEnum):
    """The triage decisions a rule may match (triage/outcome.py's Decision)."""

    AUTHORIZED_CHANGE = "authorized-change"
    SUSPICIOUS = "suspicious"
    UNAUTHORIZED = "unauthorized"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeverityRange(_Strict):
    """GuardDuty severity, 1.0 to 10.0 (low < 4, medium < 7, high < 9, critical)."""

    min: float = Field(default=0.0, ge=0.0, le=10.0)
    max: float = Field(default=10.0, ge=0.0, le=10.0)

    @model_validator(mode="after")
    def _ordered(self) -> SeverityRange:
        if self.min > self.max:
            raise ValueError(f"severity min {self.min} is above max {self.max}")
        return self


class Match(_Strict):
    """Every field given must match (AND); within a list any value matches (OR). Globs use fnmatch."""

    accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()
    severity: SeverityRange | None = None
    actor_kinds: tuple[str, ...] = ()


class Rule(_Strict):
    """What to do when `match` matches: the first matching rule decides."""

    name: str = Field(min_length=1, max_length=200)
    match: Match = Field(default_factory=Match)
    auto: tuple[str, ...] = (NON_DESTRUCTIVE,)
    """Steps that run without approval: `non-destructive`, action ids or step ids (globs allowed)."""
    auto_destructive: bool = False
    """Whether an id in `auto` may name a destructive step (otherwise it still waits for approval)."""
    notify: tuple[str, ...] = ()
    """Who is told: webhook URLs, SNS topic ARNs, or names your war room resolves."""


class ResponsePolicy(_Strict):
    """The whole file: ordered rules, the default for findings no rule matches, and the OU map."""

    version: int = Field(default=1, ge=1, le=1)
    default: Rule = Field(default_factory=lambda: Rule(name="default"))
    rules: tuple[Rule, ...] = ()
    organisational_units: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """OU id -> its account ids, so `match.ous` works without calling AWS Organizations."""

    def ou_of(self, account: str | None) -> tuple[str, ...]:
        return tuple(ou for ou, accounts in self.organisational_units.items() if account in accounts)


DEFAULT_POLICY = ResponsePolicy()
"""No file: non-destructive steps run, everything else waits for approval, nobody extra is told."""
