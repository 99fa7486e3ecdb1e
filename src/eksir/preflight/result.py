"""One check's outcome, as the doctor prints it and as `-o json` emits it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    """Could not tell (the check needs something that failed earlier, or the API is not available)."""
    UNAVAILABLE_IN_LAB = "unavailable-in-lab"
    """`eksir lab doctor` only: the lab cannot provide what the check looks for (DESIGN.md, "Lab modes")."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict.value}


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Verdict.PASS, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Verdict.FAIL, detail, fix)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Verdict.SKIP, detail)


def in_lab(result: CheckResult, lab: Mapping[str, str]) -> CheckResult:
    """A check the lab cannot provide (`lab`: check name -> why): `unavailable-in-lab` with the reason and
    what the check saw, unless it passed anyway (then it simply passes)."""
    reason = lab.get(result.name)
    if reason is None or result.verdict is Verdict.PASS:
        return result
    return CheckResult(result.name, Verdict.UNAVAILABLE_IN_LAB, f"{reason} (the check saw: {result.detail})")
