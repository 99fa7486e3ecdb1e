"""Lessons learned, pre-filled from what the case shows (the team edits them in the review, not from
scratch).

Three questions every privileged-pod incident review asks: how was the pod admitted (Pod Security
Admission state of the namespace), who was allowed to create it (the RBAC grant), and with which
credentials. Each lesson states only what the case records and says plainly when the case does not record
it, then names the prevention that was proven (or not) in the cluster.
"""

from __future__ import annotations

from typing import Any

from eksir.models.finding import ActorKind, Finding
from eksir.report.model import Lesson

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"

_CREDENTIAL_ADVICE = {
    ActorKind.IAM_USER: "Deactivate and rotate the long-term access key; move people to IAM Identity Center "
    "(short-lived credentials) and remove the user's cluster access entry if not needed.",
    ActorKind.IAM_ROLE: "Review who can assume the role (trust policy), revoke older sessions, and scope the "
    "role's EKS access entry / aws-auth mapping to the namespaces it needs.",
    ActorKind.EC2_INSTANCE_ROLE: "A node's instance role was used from elsewhere: require IMDSv2 with hop "
    "limit 1, "
    "block pod access to IMDS, and alert on instance credentials used outside the instance.",
    ActorKind.SERVICE_ACCOUNT: "Bind the service account only to what its workload needs, disable token "
    "automount where unused, and check how its token left the pod.",
    ActorKind.ANONYMOUS: "Disable anonymous authentication and remove every binding to system:anonymous / "
    "system:unauthenticated.",
}


def admission_lesson(namespace: str | None, assessment: dict[str, Any] | None) -> Lesson:
    if assessment is None:
        return Lesson(
            "Admission",
            f"The case does not record the Pod Security Admission labels of namespace "
            f"{namespace or '(unknown)'}.",
            "Run `eksir prevent CASE` to record them, enforce `baseline` or `restricted`, and prove it.",
        )
    previous = (assessment.get("previous_labels") or {}).get(ENFORCE_LABEL)
    ns = assessment.get("namespace") or namespace
    if previous in (None, ""):
        text = f"Namespace {ns} had no `{ENFORCE_LABEL}` label, so the API server admitted a privileged pod."
    elif previous == "privileged":
        text = f"Namespace {ns} was labelled `{ENFORCE_LABEL}=privileged`, which admits privileged pods."
    else:
        text = (
            f"Namespace {ns} enforced `{previous}`; the pod was admitted by an exemption or a later change."
        )
    violators = assessment.get("violating_pods") or []
    if violators:
        text += f" {len(violators)} existing pod(s) would violate `{assessment.get('level')}`: " + ", ".join(
            str(v) for v in violators[:10]
        )
    return Lesson(
        "Admission",
        text,
        f"Enforce `{assessment.get('level', 'baseline')}` on every application namespace (warn/audit first), "
        "keep privileged workloads in a dedicated, labelled namespace, and enforce the same with "
        "Kyverno or Gatekeeper.",
    )


def rbac_lesson(username: str | None, assessment: dict[str, Any] | None) -> Lesson:
    grants = (assessment or {}).get("rbac_grants")
    if grants is None:
        return Lesson(
            "Authorization",
            f"The case does not record which RBAC grant let {username or 'the caller'} create pods.",
            "List the RoleBindings/ClusterRoleBindings of the caller and its groups that allow "
            "`create pods`.",
        )
    if not grants:
        return Lesson(
            "Authorization",
            f"No RBAC grant for {username} allowing `create pods` was found when checked (it may have been "
            "removed during containment, or came from a group or access policy not visible to RBAC).",
            "Check EKS access policies associated with the principal's access entry.",
        )
    named = "; ".join(f"{g.get('binding')} -> {g.get('role')} (subject {g.get('subject')})" for g in grants)
    return Lesson(
        "Authorization",
        f"{username} could create pods through: {named}.",
        "Replace broad grants (edit/admin/cluster-admin, wildcard verbs) with namespace-scoped roles; nobody "
        "outside the deployment pipeline should be able to create pods directly in production.",
    )


def credential_lesson(finding: Finding | None) -> Lesson:
    actor = finding.actor if finding else None
    if actor is None:
        return Lesson("Credentials", "The finding does not name the caller.", "Enable EKS audit logs.")
    call = finding.api_call if finding else None
    parts = [f"{actor.kind.value} `{actor.username}`"]
    if actor.access_key_id:
        parts.append(f"access key `{actor.access_key_id}`")
    if actor.session_name:
        parts.append(f"session `{actor.session_name}`")
    if call and call.source_ips:
        parts.append(f"from {', '.join(call.source_ips)}")
    if call and call.user_agent:
        parts.append(f"with user agent `{call.user_agent}`")
    advice = _CREDENTIAL_ADVICE.get(actor.kind, "Review how this identity's credentials were obtained.")
    return Lesson("Credentials", "The pod was created by " + ", ".join(parts) + ".", advice)


def prevention_lesson(proof: dict[str, Any] | None, applied: bool) -> Lesson:
    if proof is None:
        state = "applied but not proven" if applied else "not applied"
        return Lesson(
            "Prevention",
            f"Pod Security Admission enforcement is {state} in this case.",
            "Run `eksir prevent CASE --apply --prove` to enforce it and replay the attacker's request.",
        )
    result = proof.get("result")
    who = proof.get("replayed_by") or (proof.get("identity") or {}).get("username")
    text = (
        f"Replaying the attacker's pod creation (its pod spec, server-side dry run, sent by {who}) was "
        f"answered {proof.get('status')}: {proof.get('message')}"
    )
    if result == "proven":
        return Lesson("Prevention", text, "Keep the labels under change control; alert on their removal.")
    if result == "denied-by-rbac":
        advice = "RBAC refused the replay before admission; replay as an identity that may create pods."
        return Lesson("Prevention", text + " (not proven: RBAC).", advice)
    return Lesson("Prevention", text + f" (result: {result}).", "The prevention is NOT proven; investigate.")


def lessons(
    finding: Finding | None, assessment: dict[str, Any] | None, proof: dict[str, Any] | None, applied: bool
) -> list[Lesson]:
    namespace = finding.workload.namespace if finding and finding.workload else None
    username = finding.actor.username if finding and finding.actor else None
    return [
        admission_lesson(namespace, assessment),
        rbac_lesson(username, assessment),
        credential_lesson(finding),
        prevention_lesson(proof, applied),
    ]
