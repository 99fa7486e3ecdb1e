"""What a rollback gives back, said in words before anyone confirms it.

Why: rolling back containment re-enables what the attacker used (an access key, a pod's network, a node). A
responder asked "Roll back s01, s03, s06? [y/N]" could not tell that from step ids, and one `y` on a closed,
exported case re-enabled the attacker's key. Each step that restores access is named in a sentence and, at a
terminal, confirmed on its own; the others (labels, snapshots kept) are listed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from eksir.engine.state import RunState, StepRecord

RESTORES_ACCESS: dict[str, str] = {
    "iam.deactivate_access_key": "re-activates access key {access_key_id} of IAM user {user_name}",
    "iam.revoke_role_sessions": "lets sessions of role {role_name} issued before the revocation work again",
    "k8s.isolate_pod": "lifts the network quarantine of pod {namespace}/{pod_name}",
    "ec2.isolate_instance": "puts instance {instance_id} back on its original security groups",
    "ec2.tighten_isolation": "gives instance {instance_id} back its egress to the SSM and S3 endpoints",
    "ec2.disable_metadata": "turns the metadata endpoint (IMDS) of instance {instance_id} back on",
    "ec2.deny_subnet_nacl": "puts the subnets of instance {instance_id} back on their original network ACLs",
    "k8s.cordon_node": "lets new pods be scheduled on node {node_name} again",
    "k8s.remove_user_bindings": "gives Kubernetes user {username} back its RBAC bindings",
    "k8s.revoke_service_account_grants": "gives service account {namespace}/{service_account} its grants",
    "k8s.remove_aws_auth_entry": "maps {arn} into the cluster again (aws-auth {map})",
    "eks.delete_access_entry": "recreates the EKS access entry of {principal_arn} on {cluster_name}",
    "ssm.pause_container": "resumes the paused container {container_id} on instance {instance_id}",
}
"""Containment steps whose rollback gives access back, and what it gives back (from the step's parameters)."""


def restores_access(record: StepRecord, state: RunState) -> str | None:
    """The sentence for a step whose rollback re-enables access, else None."""
    template = RESTORES_ACCESS.get(record.action_id)
    if template is None:
        return None
    params: dict[str, Any] = defaultdict(lambda: "?", state.plan.step(record.step_id).params)
    return template.format_map(params)


def describe(targets: list[StepRecord], state: RunState) -> list[str]:
    """One line per step, newest first as it will be undone; access given back is said first."""
    lines = []
    for record in targets:
        sentence = restores_access(record, state)
        what = sentence if sentence else f"undoes {record.action_id}"
        lines.append(f"{record.step_id}: {what}")
    return lines
