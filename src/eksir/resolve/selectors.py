"""Kubernetes label-selector matching, for PodDisruptionBudgets and Services selecting the suspect pod.

Why here and not server-side: the API server can filter pods by a selector, but not the other way round
("which PDBs select this pod"), which is what the outage check asks.
"""

from __future__ import annotations

from typing import Any


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A LabelSelector (`matchLabels` + `matchExpressions`) matches the labels.

    An empty selector `{}` matches every pod (policy/v1 semantics); a null or malformed one matches none,
    and so does an expression with an unknown operator (fail closed: claim no match rather than a wrong one).
    """
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        return False
    if any(labels.get(str(key)) != str(value) for key, value in match_labels.items()):
        return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or [])


def _expression_matches(expression: Any, labels: dict[str, str]) -> bool:
    if not isinstance(expression, dict):
        return False
    key, operator = str(expression.get("key")), expression.get("operator")
    values = {str(v) for v in expression.get("values") or []}
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def map_selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A Service-style selector (a plain map): every pair present; an empty one selects nothing."""
    if not isinstance(selector, dict) or not selector:
        return False
    return all(labels.get(str(key)) == str(value) for key, value in selector.items())
