"""Offline triage: was this privileged pod an approved change, and where did the call come from?"""

from eksir.triage.config import ChangeRecord, TriageConfig, load_triage_config
from eksir.triage.verdict import CheckResult, CheckStatus, Decision, Verdict, triage_finding

__all__ = [
    "ChangeRecord",
    "CheckResult",
    "CheckStatus",
    "Decision",
    "TriageConfig",
    "Verdict",
    "load_triage_config",
    "triage_finding",
]
