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

# Every module that defines an action (a class decorated with `register_action`), named explicitly so the
# registry is complete without import side effects elsewhere. tests/actions/test_registry.py checks this list
# against the source tree, so a new action module that is not listed fails the suite instead of silently
# becoming "not available in this version". Add a module here when you add one.
ACTION_MODULES: tuple[str, ...] = (
    "eksir.actions.containment.asg_processes",
    "eksir.actions.containment.audit_queries",
    "eksir.actions.containment.container_pause",
    "eksir.actions.containment.ec2_hardening",
    "eksir.actions.containment.ec2_isolation",
    "eksir.actions.containment.ec2_nacl",
    "eksir.actions.containment.ec2_node",
    "eksir.actions.containment.eks_access",
    "eksir.actions.containment.eks_grant_access",
    "eksir.actions.containment.iam_identity",
    "eksir.actions.containment.iam_instance_deny",
    "eksir.actions.containment.iam_login",
    "eksir.actions.containment.iam_sessions",
    "eksir.actions.containment.iam_trust",
    "eksir.actions.containment.k8s_aws_auth",
    "eksir.actions.containment.k8s_identity",
    "eksir.actions.containment.k8s_node",
    "eksir.actions.containment.k8s_orphan",
    "eksir.actions.containment.k8s_pod",
    "eksir.actions.containment.k8s_secrets",
    "eksir.actions.evidence.checkpoint",
    "eksir.actions.evidence.node_diagnostic",
    "eksir.actions.containment.node_disruption",
    "eksir.actions.evidence.snapshots",
    "eksir.actions.evidence.volatile",
    "eksir.actions.closeout.findings",
    "eksir.actions.closeout.snapshots",
    "eksir.actions.prevention.admission_policy",
    "eksir.actions.prevention.pod_security",
    "eksir.actions.prevention.suppression",
    "eksir.actions.recovery.aws_resources",
    "eksir.actions.recovery.iam_other",
    "eksir.actions.recovery.iam_user",
    "eksir.actions.recovery.k8s_objects",
    "eksir.actions.recovery.node_retire",
    "eksir.actions.recovery.workload",
)

# Ids that earlier versions wrote into plans (recovery took `service.verb` ids later): a recorded plan that
# names one still resumes and rolls back with the action it meant.
LEGACY_IDS: dict[str, str] = {
    "recovery.terminate_instance": "ec2.terminate_instance",
    "recovery.delete_lambda_function": "lambda.delete_function",
    "recovery.delete_s3_bucket": "s3.delete_bucket",
    "recovery.delete_k8s_object": "k8s.delete_object",
    "recovery.restore_k8s_object": "k8s.restore_object",
    "recovery.detach_policy": "iam.detach_policy",
    "recovery.delete_iam_user": "iam.delete_user",
    "recovery.replace_workload_pod": "k8s.replace_pod",
    "recovery.drain_terminate_node": "k8s.drain_terminate_node",
    "recovery.delete_access_key": "iam.delete_access_key",
    "recovery.delete_iam_role": "iam.delete_role",
    "recovery.delete_iam_policy": "iam.delete_policy",
}


def register_action(cls: A) -> A:
    if cls.spec.id in _REGISTRY and _REGISTRY[cls.spec.id] is not cls:
        raise ValueError(f"action id {cls.spec.id} registered twice")
    _REGISTRY[cls.spec.id] = cls
    return cls


def load_all() -> dict[str, type[Action[Any]]]:
    """Import every action module and return the registry.

    A listed module that is missing is an error (ModuleNotFoundError), never a quietly smaller registry: a
    lost module would otherwise turn its steps into "not available in this version" in every plan.
    """
    for name in ACTION_MODULES:
        import_module(name)
    return dict(_REGISTRY)


def get_action(action_id: str) -> Action[Any]:
    registry = load_all()
    try:
        return registry[LEGACY_IDS.get(action_id, action_id)]()
    except KeyError as exc:
        raise KeyError(f"unknown action {action_id}") from exc
