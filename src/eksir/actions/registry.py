"""The registry of actions by id, filled by the `register_action` class decorator.

The engine looks actions up by the id stored in a plan (so a persisted plan can be resumed by another
process), and `eksir permissions` walks the registry to derive least-privilege policies.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, TypeVar

from eksir.actions.base import Action

_REGISTRY: dict[str, type[Action[Any]]] = {}
A = TypeVar("A", bound=type[Action[Any]])

# Modules whose import registers actions; listed here so the registry is complete without import side effects
# elsewhere. Add a module when you add an action.
ACTION_MODULES: tuple[str, ...] = (
    "eksir.actions.containment.k8s_pod",
    "eksir.actions.containment.k8s_orphan",
    "eksir.actions.containment.k8s_node",
    "eksir.actions.containment.k8s_identity",
    "eksir.actions.containment.iam_identity",
    "eksir.actions.containment.ec2_node",
    "eksir.actions.containment.eks_access",
    "eksir.actions.containment.ec2_isolation",
    "eksir.actions.containment.audit_queries",
    "eksir.actions.evidence.volatile",
    "eksir.actions.containment.container_pause",
    "eksir.actions.evidence.snapshots",
    "eksir.recovery.actions",
)


def register_action(cls: A) -> A:
    if cls.spec.id in _REGISTRY and _REGISTRY[cls.spec.id] is not cls:
        raise ValueError(f"action id {cls.spec.id} registered twice")
    _REGISTRY[cls.spec.id] = cls
    return cls


def load_all() -> dict[str, type[Action[Any]]]:
    """Import every action module (those present) and return the registry."""
    for name in ACTION_MODULES:
        try:
            import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return dict(_REGISTRY)


def get_action(action_id: str) -> Action[Any]:
    registry = load_all()
    try:
        return registry[action_id]()
    except KeyError as exc:
        raise KeyError(f"unknown action {action_id}") from exc
