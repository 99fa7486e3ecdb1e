"""`k8s.orphan_pod`: take the suspect pod out of its ReplicaSet so the service heals while the pod is kept.

Why: deleting the suspect pod destroys its memory, processes and writable layer; leaving it in its
ReplicaSet means any scale-down or rollout may delete it, and Services keep routing users to it. Removing
the controller ownerReference *and* the labels the ReplicaSet selects, in one JSON patch, makes the
ReplicaSet start a replacement and never re-adopt the pod (re-adoption happens when labels still match). The
removed labels and ownerReference are stored in a pod annotation as well as the applied record. Rollback
refuses to restore an ownerReference to a ReplicaSet that no longer exists (or has a new uid): the garbage
collector would delete the pod, the evidence, as an orphaned dependent.
"""

from __future__ import annotations

import json
from typing import Any

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.casework import json_pointer, require_live, to_json
from eksir.actions.containment.netpol import selector_matches, survey_cnis
from eksir.actions.containment.podref import PodParams, read_pod
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import apps, core
from eksir.errors import EksirError, NotFoundError, RefusedError

ORPHANED_FROM = "eksir.io/orphaned-from"


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    refs = pod["metadata"].get("ownerReferences") or []
    return next((dict(r) for r in refs if r.get("controller")), None)


def _read_rs(ctx: ActionContext, namespace: str, name: str) -> dict[str, Any]:
    api = ctx.k8s()
    with k8s_call(f"read ReplicaSet {namespace}/{name}"):
        return dict(to_json(api, apps(api).read_namespaced_replica_set(name, namespace)))


def selected_keys(selector: dict[str, Any]) -> list[str]:
    """Label keys whose removal makes a pod stop matching the selector (matchLabels, In, Exists)."""
    keys = list((selector.get("matchLabels") or {}).keys())
    keys += [e["key"] for e in selector.get("matchExpressions") or [] if e["operator"] in ("In", "Exists")]
    return sorted(set(keys))


def _isolation_needs_owner(ctx: ActionContext) -> str | None:
    """Why removing the ownerReference would switch the pod's isolation off, or None when it would not.

    The VPC CNI applies no network policy to a pod without ownerReferences (EKS user guide,
    cni-network-policy): where it is the only CNI that could enforce, an orphaned pod leaves quarantine.
    Calico and Cilium have no such limit. When the CNI cannot be read, the pod is not orphaned.
    """
    try:
        survey = survey_cnis(ctx.k8s())
    except EksirError as exc:
        return f"could not tell which CNI enforces NetworkPolicy ({exc.message})"
    if survey.only_vpc_cni:
        return (
            "the VPC CNI applies network policies only to pods with ownerReferences; orphaning would "
            "switch this pod's isolation off"
        )
    return None


@register_action
class OrphanPod(Action[PodParams]):
    spec = ActionSpec(
        id="k8s.orphan_pod",
        phase=Phase.CONTAINMENT,
        title="Orphan the suspect pod from its ReplicaSet so a replacement serves traffic",
        rbac=(
            RbacRule(("",), ("pods",), ("get", "patch")),
            RbacRule(("apps",), ("replicasets",), ("get",)),
            RbacRule(("apps",), ("daemonsets",), ("list",)),
        ),
        destructive=True,
        reversible=True,
    )
    params_type = PodParams

    def _pod(self, ctx: ActionContext, params: PodParams) -> dict[str, Any]:
        return read_pod(ctx, params)

    def check(self, ctx: ActionContext, params: PodParams) -> CheckOutcome:
        try:
            pod = self._pod(ctx, params)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        owner = _controller(pod)
        annotations = pod["metadata"].get("annotations") or {}
        if owner is None:
            return CheckOutcome(
                ok=True,
                detail=f"pod {params.pod_name} has no controller; nothing to orphan",
                already_applied=ORPHANED_FROM in annotations,
            )
        if (held := _isolation_needs_owner(ctx)) is not None:
            return CheckOutcome(ok=False, detail=f"not orphaning pod {params.pod_name}: {held}")
        if owner["kind"] != "ReplicaSet":
            return CheckOutcome(
                ok=False,
                detail=f"pod {params.pod_name} is controlled by {owner['kind']} "
                f"{owner['name']}; only ReplicaSet pods can be orphaned safely",
            )
        return CheckOutcome(
            ok=True,
            detail=f"pod {params.pod_name} is controlled by ReplicaSet {owner['name']}",
            warnings=(
                "the ReplicaSet starts a replacement pod; the suspect pod no longer receives Service "
                "traffic but keeps running until you delete it",
            ),
        )

    def plan(self, ctx: ActionContext, params: PodParams) -> PlannedChange:
        pod = self._pod(ctx, params)
        owner = _controller(pod)
        if owner is None:
            return PlannedChange(summary=f"Nothing to do: pod {params.pod_name} has no controller")
        rs = _read_rs(ctx, params.namespace, owner["name"])
        labels = pod["metadata"].get("labels") or {}
        keys = [k for k in selected_keys(rs["spec"]["selector"]) if k in labels]
        return PlannedChange(
            summary=f"Orphan pod {params.pod_name} from ReplicaSet {owner['name']}",
            diff=(
                f"- ownerReference {owner['kind']}/{owner['name']}",
                *(f"- label {k}={labels[k]}" for k in keys),
            ),
            blast_radius=(f"ReplicaSet {owner['name']} creates one replacement pod",),
        )

    def apply(self, ctx: ActionContext, params: PodParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        pod = self._pod(ctx, params)
        annotations = pod["metadata"].get("annotations") or {}
        if ORPHANED_FROM in annotations:
            return {**json.loads(annotations[ORPHANED_FROM]), "pod_uid": params.pod_uid}
        owner = _controller(pod)
        if owner is None:
            return {"pod_uid": params.pod_uid, "owner_references": None, "labels": {}}
        rs = _read_rs(ctx, params.namespace, owner["name"])
        labels = pod["metadata"].get("labels") or {}
        removed = {k: labels[k] for k in selected_keys(rs["spec"]["selector"]) if k in labels}
        record = {"owner_references": pod["metadata"]["ownerReferences"], "labels": removed}
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/uid", "value": params.pod_uid},
            {"op": "test", "path": "/metadata/resourceVersion", "value": pod["metadata"]["resourceVersion"]},
            {"op": "remove", "path": "/metadata/ownerReferences"},
        ]
        ops += [{"op": "remove", "path": json_pointer("metadata", "labels", k)} for k in removed]
        if not annotations:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        ops.append(
            {
                "op": "add",
                "path": json_pointer("metadata", "annotations", ORPHANED_FROM),
                "value": json.dumps(record, sort_keys=True),
            }
        )
        with k8s_call(f"orphan pod {params.namespace}/{params.pod_name}"):
            core(ctx.k8s()).patch_namespaced_pod(params.pod_name, params.namespace, ops)
        return {**record, "pod_uid": params.pod_uid}

    def verify(self, ctx: ActionContext, params: PodParams, applied: dict[str, Any]) -> VerifyOutcome:
        pod = self._pod(ctx, params)
        owner = _controller(pod)
        problems = [f"still controlled by {owner['kind']} {owner['name']}"] if owner else []
        for ref in applied.get("owner_references") or []:
            try:
                rs = _read_rs(ctx, params.namespace, ref["name"])
            except NotFoundError:
                continue
            if selector_matches(rs["spec"]["selector"], pod["metadata"].get("labels")):
                problems.append(f"ReplicaSet {ref['name']} still selects the pod and would re-adopt it")
        return VerifyOutcome(
            ok=not problems,
            detail="; ".join(problems) or f"pod {params.pod_name} is preserved and owned by no controller",
            observed={"owner_references": pod["metadata"].get("ownerReferences")},
        )

    def rollback(self, ctx: ActionContext, params: PodParams, applied: dict[str, Any]) -> None:
        require_live(ctx, self.spec)
        refs = applied.get("owner_references")
        if not refs:
            return
        for ref in refs:
            try:
                rs = _read_rs(ctx, params.namespace, ref["name"])
            except NotFoundError:
                rs = {"metadata": {"uid": None}}
            if rs["metadata"]["uid"] != ref["uid"]:
                raise RefusedError(
                    f"ReplicaSet {ref['name']} ({ref['uid']}) is gone: restoring the ownerReference would "
                    f"let the garbage collector delete pod {params.pod_name}"
                )
        pod = self._pod(ctx, params)
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/uid", "value": params.pod_uid},
            {"op": "add", "path": "/metadata/ownerReferences", "value": refs},
        ]
        if not pod["metadata"].get("labels"):
            ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
        ops += [
            {"op": "add", "path": json_pointer("metadata", "labels", k), "value": v}
            for k, v in dict(applied.get("labels", {})).items()
        ]
        if ORPHANED_FROM in (pod["metadata"].get("annotations") or {}):
            ops.append({"op": "remove", "path": json_pointer("metadata", "annotations", ORPHANED_FROM)})
        with k8s_call(f"re-attach pod {params.namespace}/{params.pod_name} to its ReplicaSet"):
            core(ctx.k8s()).patch_namespaced_pod(params.pod_name, params.namespace, ops)
