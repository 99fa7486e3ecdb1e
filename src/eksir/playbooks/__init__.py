"""Playbooks: pure functions from (finding, resolution, options) to a Plan; no I/O, unit-testable."""

from eksir.playbooks.plan import NoteLevel, Plan, PlanNote, PlanStep
from eksir.playbooks.privileged_container import PlaybookOptions, build_plan

__all__ = ["NoteLevel", "Plan", "PlanNote", "PlanStep", "PlaybookOptions", "build_plan"]
