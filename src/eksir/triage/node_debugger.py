"""Recognise the pod `kubectl debug node/NODE` creates: the most common false positive of this finding.

kubectl (v1.34, `generateNodeDebugPod` and the profiles in `kubectl/pkg/cmd/debug`) names the pod
`node-debugger-<node>-<5 random chars from bcdfghjklmnpqrstvwxz2456789>`, gives it one container (`debugger`
unless `--container`), no labels or annotations, host PID, network and IPC, and the host's `/` at `/host`.
`--profile=sysadmin` also makes the container privileged (GuardDuty: `...!PrivilegedContainer`); the default
profile does not (GuardDuty: `...!ContainerWithSensitiveMount`). The API call comes from kubectl.

A name is not proof: anyone who may create pods can call theirs `node-debugger-...`. So every trait is
checked, a pod missing one is an ordinary privileged pod (with the reason said), and an authorization needs
a change record or an allow-listed admin group (`node_debug.admin_groups`). The suppression filter it gets is
bounded by the actor, the name pattern and a time window, never by the name alone.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from eksir.models.finding import ActorKind, Finding, Workload
from eksir.triage.checks import CheckResult, CheckStatus
from eksir.triage.config import TriageConfig
from eksir.triage.outcome import Decision, Verdict

NAME = re.compile(
    r"^node-debugger-(?P<node>[a-z0-9]([a-z0-9.-]*[a-z0-9])?)-(?P<suffix>[bcdfghjklmnpqrstvwxz2456789]{5})$"
)
NAME_PATTERN = "node-debugger-*"
_WORKLOAD = "resource.kubernetesDetails.kubernetesWorkloadDetails"


def recognise(finding: Finding) -> dict[str, Any] | None:
    """What the pod has of a `kubectl debug node` pod, or None when its name is not one."""
    workload = finding.workload
    match = NAME.match(workload.name or "") if workload is not None else None
    if workload is None or match is None:
        return None
    call = finding.api_call
    agent = (call.user_agent or "") if call is not None else ""
    traits = {
        "host namespaces (hostPID, hostNetwork, hostIPC)": bool(
            workload.host_pid and workload.host_network and workload.host_ipc
        ),
        "the host's / mounted at /host": _root_at_host(workload),
        "one container": len(workload.containers) == 1,
        "created by kubectl (user agent kubectl/...)": agent.startswith("kubectl/"),
    }
    privileged = any(c.privileged for c in workload.containers)
    return {
        "node": match["node"],
        "profile": "sysadmin" if privileged else "general",
        "user_agent": agent or None,
        "genuine": all(traits.values()),
        "traits": [{"trait": name, "present": present} for name, present in traits.items()],
    }


def _root_at_host(workload: Workload) -> bool:
    roots = {v.name for v in workload.volumes if v.host_path == "/"}
    return any(
        m.name in roots and m.mount_path == "/host" for c in workload.containers for m in c.volume_mounts
    )


def review_node_debugger(finding: Finding, config: TriageConfig, verdict: Verdict) -> Verdict:
    """`verdict` with the node-debugger rule applied (unchanged for any other pod)."""
    debug = recognise(finding)
    if debug is None:
        return verdict
    who = finding.actor.username if finding.actor else None
    what = (
        f"kubectl debug node/{debug['node']} pod (profile {debug['profile']}) by {who or 'an unknown actor'}"
    )
    if not debug["genuine"]:
        missing = ", ".join(t["trait"] for t in debug["traits"] if not t["present"])
        note = f"named like a kubectl debug node pod but without: {missing}; a name can be copied, so it is "
        return replace(
            verdict, reasons=(*verdict.reasons, note + "judged as any privileged pod"), debug_pod=debug
        )
    check = _check(finding, config, what)
    checks = (*verdict.checks, check)
    if verdict.decision is Decision.AUTHORIZED_CHANGE and verdict.change_record is not None:
        record = verdict.change_record
        window = (record.window_start, record.window_end)
        reasons = (f"{what}, covered by approved change {record.id}", *verdict.reasons[1:])
        return replace(
            verdict,
            reasons=reasons,
            checks=checks,
            debug_pod=debug,
            suppression_filter=debug_filter(finding, f"change-{record.id}", window),
        )
    if check.status is CheckStatus.PASS and _origin_clean(verdict) and _may_authorize(finding):
        at = finding.event_first_seen or finding.created_at
        assert at is not None  # _may_authorize checked it
        hours = config.node_debug.window_hours if config.node_debug else 8
        window = (at, at + timedelta(hours=hours))
        return Verdict(
            Decision.AUTHORIZED_CHANGE,
            (check.detail,),
            checks,
            None,
            debug_filter(finding, f"admin-{who}", window),
            _follow_ups(debug),
            debug,
        )
    reason = f"{what}: a debugging session, but no change record or allow-listed admin group covers it"
    return replace(verdict, reasons=(reason, *verdict.reasons), checks=checks, debug_pod=debug)


def _check(finding: Finding, config: TriageConfig, what: str) -> CheckResult:
    name = "node-debug-admin"
    groups = set(config.node_debug.admin_groups) if config.node_debug else set()
    if not groups:
        return CheckResult(name, CheckStatus.NOT_CONFIGURED, "no node_debug.admin_groups configured")
    member = sorted(groups & set(finding.actor.groups if finding.actor else ()))
    if member:
        return CheckResult(
            name, CheckStatus.PASS, f"{what}, a member of allow-listed admin group {member[0]}"
        )
    return CheckResult(name, CheckStatus.FAIL, f"{what}, who is in no allow-listed admin group")


def _origin_clean(verdict: Verdict) -> bool:
    origin = {"source-ip", "organization", "country", "user-agent"}
    return not any(c.name in origin and c.status is CheckStatus.FAIL for c in verdict.checks)


def _may_authorize(finding: Finding) -> bool:
    actor = finding.actor
    return (
        actor is not None
        and actor.kind is not ActorKind.ANONYMOUS
        and bool(actor.username)
        and (finding.event_first_seen or finding.created_at) is not None
    )


def debug_filter(finding: Finding, label: str, window: tuple[datetime, datetime]) -> dict[str, Any]:
    """The GuardDuty CreateFilter request archiving this actor's node-debugger pods, in this window only."""
    criterion: dict[str, dict[str, Any]] = {
        "type": {"Equals": [finding.type]},
        f"{_WORKLOAD}.name": {"Matches": [NAME_PATTERN]},
        "updatedAt": {
            "GreaterThanOrEqual": int(window[0].timestamp() * 1000),
            "LessThan": int(window[1].timestamp() * 1000),
        },
    }
    if finding.cluster:
        criterion["resource.eksClusterDetails.name"] = {"Equals": [finding.cluster.name]}
    if finding.actor and finding.actor.username:
        criterion["resource.kubernetesDetails.kubernetesUserDetails.username"] = {
            "Equals": [finding.actor.username]
        }
    if finding.workload and finding.workload.namespace:
        criterion[f"{_WORKLOAD}.namespace"] = {"Equals": [finding.workload.namespace]}
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"eksir-node-debug-{label}")[:64]
    return {
        "DetectorId": finding.detector_id or "<detector-id>",
        "Name": name,
        "Description": "Auto-archive this admin's kubectl debug node pods for the approved window only",
        "Action": "ARCHIVE",
        "Rank": 1,
        "FindingCriteria": {"Criterion": criterion},
    }


def _follow_ups(debug: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"Confirm with the admin why node {debug['node']} was debugged, and record it as a change.",
        "Delete the node-debugger pod when the session ends (kubectl leaves it behind).",
        "Create the suppression filter only for the session's window; it expires with the window's end.",
    )
