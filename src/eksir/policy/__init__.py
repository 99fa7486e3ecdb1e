"""Response policy as data: which steps run without a person, which wait for approval, who is told.

See `model.py` (the YAML's shape), `load.py` (reading it with line numbers) and `decide.py` (the decision).
"""

from eksir.policy.decide import Decision, FindingFacts, decide, facts_of
from eksir.policy.load import load_policy, parse_policy
from eksir.policy.model import ResponsePolicy, Rule

__all__ = [
    "Decision",
    "FindingFacts",
    "ResponsePolicy",
    "Rule",
    "decide",
    "facts_of",
    "load_policy",
    "parse_policy",
]
