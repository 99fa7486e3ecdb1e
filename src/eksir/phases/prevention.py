"""Prevention that is proven: assess, write policies, enforce (on approval), then replay the attack.

`assess` records the namespace's Pod Security labels, a server-side dry run of the new ones (which
existing pods would violate) and the RBAC grants that let the attacker create pods, and writes
PSA/Kyverno/Gatekeeper YAML into the case. `enforce` runs `k8s.enforce_pod_security` through the engine on
the case's prevention track (approved, recorded, resumable, reversible like every step). `prove` sends the
attacker's exact pod spec as a server-side dry run by the responder (replay.py says why not as the attacker)
and records request, status and message.
`create_suppression_filter` is the authorized-change counterpart (`guardduty.create_filter`).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from eksir.actions.prevention.admission_policy import POLICY_NAME, denial_names_policy, violating_namespaces
from eksir.actions.prevention.psa import PsaLevel, dry_run_psa
from eksir.actions.prevention.rbac import pod_create_grants
from eksir.actions.prevention.replay import (
    audit_pod_request,
    pod_from_audit,
    pod_from_finding,
    replay_pod_create,
)
from eksir.actions.prevention.suppression import params_from_triage
from eksir.engine.approval import ApprovalGate
from eksir.engine.runner import ContextFactory
from eksir.engine.state import StepRecord
from eksir.engine.steps import run_steps
from eksir.engine.tracks import PREVENTION
from eksir.errors import BadInputError, EksirError, RefusedError
from eksir.models.finding import Finding
from eksir.playbooks.post_incident import (
    deny_privileged_step,
    enforce_pod_security_step,
    suppression_filter_step,
)
from eksir.report.build import ASSESSMENT_DOC, PROOF_DOC, load_finding
from eksir.report.policies import policy_files
from eksir.store.case_store import CaseHandle
from eksir.store.record import load_record

__all__ = [
    "PsaLevel",
    "assess",
    "attacker_identity",
    "create_suppression_filter",
    "deny_cluster_wide",
    "enforce",
    "prove",
    "prove_cluster_wide",
]
CLUSTER_PROOF_DOC = "prevention/cluster-proof.json"


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def case_finding(handle: CaseHandle) -> Finding:
    """The case's normalised finding (hash-checked); BadInputError when the case has none."""
    finding = load_finding(load_record(handle))
    if finding is None:
        raise BadInputError(f"case {handle.path.name} has no finding.json; run `eksir triage` first")
    return finding


def target_namespace(finding: Finding, namespace: str | None) -> str:
    found = namespace or (finding.workload.namespace if finding.workload else None)
    if not found:
        raise BadInputError("the finding names no namespace; pass --namespace")
    return found


def attacker_identity(finding: Finding) -> dict[str, Any]:
    """Username and groups of the Kubernetes caller as GuardDuty recorded them."""
    actor = finding.actor
    if actor is None or not actor.username:
        raise BadInputError("the finding does not name the Kubernetes caller; cannot replay as the attacker")
    return {"username": actor.username, "groups": list(actor.groups), "uid": actor.uid}


def assess(handle: CaseHandle, api: Any, level: PsaLevel, namespace: str | None = None) -> dict[str, Any]:
    """Dry-run the labels, look up the RBAC grants, write assessment + policy files into the case."""
    finding = case_finding(handle)
    ns = target_namespace(finding, namespace)
    check = dry_run_psa(api, ns, level)
    assessment: dict[str, Any] = check.to_json()
    identity = finding.actor
    try:
        assessment["rbac_grants"] = (
            pod_create_grants(api, ns, identity.username, identity.groups)
            if identity and identity.username
            else None
        )
    except EksirError as exc:
        assessment["rbac_grants"] = None
        assessment["rbac_note"] = exc.message
    case_id = handle.load().id
    files = policy_files(ns, level, case_id)
    assessment["policies"] = sorted(files)
    for relative, data in files.items():
        handle.write_document(relative, data, "prevention-policy")
    handle.write_document(ASSESSMENT_DOC, _json(assessment), "prevention-assessment")
    handle.append(
        "prevention.assessed",
        {
            "namespace": ns,
            "level": level.value,
            "violating_pods": assessment["violating_pods"],
            "detail": f"{len(check.violating_pods)} violating pod group(s)",
        },
    )
    return assessment


def enforce(
    handle: CaseHandle,
    ctx: ContextFactory,
    level: PsaLevel,
    gate: ApprovalGate,
    namespace: str | None = None,
) -> StepRecord:
    """Apply the PSA labels as an approved engine step (`k8s.enforce_pod_security`, prevention track)."""
    ns = target_namespace(case_finding(handle), namespace)
    step = enforce_pod_security_step(ns, level)
    return run_steps(handle, PREVENTION, [step], ctx, gate)[0]


def prove(handle: CaseHandle, api: Any, namespace: str | None = None) -> dict[str, Any]:
    """Dry-run the attacker's pod spec through `api` (the responder's client); record and return the proof."""
    finding = case_finding(handle)
    ns = target_namespace(finding, namespace)
    pod, source = _attacker_pod(handle, finding, ns)
    proof = replay_pod_create(api, ns, pod, attacker_identity(finding), source)
    handle.write_document(PROOF_DOC, _json(proof), "prevention-proof")
    event = "prevention.proven" if proof["result"] == "proven" else "prevention.not-proven"
    handle.append(event, {"status": proof["status"], "result": proof["result"], "detail": proof["message"]})
    return proof


def _attacker_pod(handle: CaseHandle, finding: Finding, namespace: str) -> tuple[dict[str, Any], str]:
    """The attacker's exact pod spec (the audit requestObject the hunt found), else the finding's."""
    hunt = load_record(handle).hunt()
    request = audit_pod_request(hunt, namespace, finding.workload.name if finding.workload else None)
    if request is not None:
        return pod_from_audit(request), "audit requestObject (hunt)"
    try:
        return pod_from_finding(finding), "finding workload details"
    except ValueError as exc:
        raise BadInputError(str(exc)) from exc


def deny_cluster_wide(
    handle: CaseHandle, api: Any, ctx: ContextFactory, gate: ApprovalGate, probe_namespace: str | None = None
) -> StepRecord:
    """Apply `k8s.deny_privileged_pods` with the exemptions read from what runs now (shown for approval)."""
    finding = case_finding(handle)
    attacker_uid = finding.workload.uid if finding.workload else None
    exempt = violating_namespaces(api, attacker_uid)
    probe = probe_namespace or next((ns for ns in ("default", "eksir-probe") if ns not in exempt), "default")
    return run_steps(handle, PREVENTION, [deny_privileged_step(exempt, probe)], ctx, gate)[0]


def prove_cluster_wide(handle: CaseHandle, api: Any, namespace: str = "default") -> dict[str, Any]:
    """Replay the attacker's pod spec into another namespace (dry run, by the responder): proven when the
    cluster-wide policy refuses it by name (an RBAC or other refusal proves nothing)."""
    finding = case_finding(handle)
    pod, source = _attacker_pod(handle, finding, target_namespace(finding, None))
    proof = replay_pod_create(api, namespace, pod, attacker_identity(finding), source)
    if denial_names_policy(proof["status"], proof["message"]):
        proof["result"] = "proven"
    elif proof["result"] == "proven":  # refused, but by Pod Security labels there, not by the cluster policy
        proof["result"] = f"refused-but-not-by-{POLICY_NAME}"
    handle.write_document(CLUSTER_PROOF_DOC, _json(proof), "prevention-proof")
    event = "prevention.cluster-proven" if proof["result"] == "proven" else "prevention.cluster-not-proven"
    handle.append(event, {"namespace": namespace, "status": proof["status"], "detail": proof["message"]})
    return proof


def create_suppression_filter(
    handle: CaseHandle, ctx: ContextFactory, gate: ApprovalGate, detector_id: str | None = None
) -> StepRecord:
    """Create the GuardDuty suppression filter from triage.json, for an authorized-change verdict only."""
    triage = load_record(handle).read_json("triage.json") or {}
    verdict = triage.get("verdict") or {}
    if verdict.get("decision") != "authorized-change":
        raise RefusedError("a suppression filter is only created for an authorized-change verdict")
    request = verdict.get("suppression_filter")
    if not isinstance(request, dict):
        raise BadInputError("triage.json has no verdict.suppression_filter")
    try:
        params = params_from_triage(request, detector_id)
    except ValidationError as exc:
        raise BadInputError(
            f"suppression filter request is not usable ({exc.errors()[0]['loc'][0]}); pass --detector-id"
        ) from exc
    return run_steps(handle, PREVENTION, [suppression_filter_step(params)], ctx, gate)[0]
