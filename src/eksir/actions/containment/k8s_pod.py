"""`k8s.isolate_pod` (and, from k8s_orphan, `k8s.orphan_pod`): cut the exact suspect pod off the network.

Why a case label and not the app label: selecting `app=web` isolates every replica and takes the service
down; the suspect pod is identified by uid and gets its own labels (`eksir.io/case-id`,
`eksir.io/quarantine`), which the deny-all NetworkPolicy selects. Why allow policies are patched:
NetworkPolicies are additive, so an existing policy that selects the pod keeps admitting traffic whatever
our deny-all says. Relabelling the app would break the workload's own selectors, so instead each such policy
gets a `eksir.io/quarantine DoesNotExist` expression: it keeps selecting every other pod and stops selecting
quarantined ones. Every before-state (label values, original selectors) is written into annotations on the
objects as well as the applied record, so a re-run after a crash still restores the true originals.
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
from eksir.actions.containment.casework import (
    CASE_LABEL,
    QUARANTINE_LABEL,
    json_pointer,
    k8s_name_for_case,
    require_live,
    to_json,
)
from eksir.actions.containment.k8s_orphan import OrphanPod
from eksir.actions.containment.netpol import (
    NOT_EFFECTIVE_PREFIX,
    admits_traffic,
    isolation_limits,
    selector_matches,
)
from eksir.actions.containment.podref import PodParams, read_pod
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core, networking
from eksir.errors import NotFoundError

__all__ = ["IsolatePod", "OrphanPod", "PodParams"]

LABELS_BEFORE = "eksir.io/labels-before-quarantine"
SELECTOR_BEFORE = "eksir.io/original-pod-selector"
QUARANTINE_EXPRESSION = {"key": QUARANTINE_LABEL, "operator": "DoesNotExist"}


def quarantine_labels(ctx: ActionContext) -> dict[str, str]:
    return {CASE_LABEL: ctx.case_id, QUARANTINE_LABEL: "true"}


def policy_name(ctx: ActionContext) -> str:
    return k8s_name_for_case("eksir-quarantine", ctx.case_id)


def deny_all_policy(ctx: ActionContext, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy_name(ctx), "namespace": namespace, "labels": {CASE_LABEL: ctx.case_id}},
        "spec": {
            "podSelector": {"matchLabels": quarantine_labels(ctx)},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def _policies(ctx: ActionContext, namespace: str) -> list[dict[str, Any]]:
    api = ctx.k8s()
    with k8s_call(f"list NetworkPolicies in {namespace}"):
        found = to_json(api, networking(api).list_namespaced_network_policy(namespace))
    return list(found.get("items", []))


def allow_policies_selecting(
    ctx: ActionContext, namespace: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Other policies in the namespace that select a pod with these labels and admit some traffic."""
    return [
        p
        for p in _policies(ctx, namespace)
        if p["metadata"]["name"] != policy_name(ctx)
        and admits_traffic(p)
        and selector_matches(p["spec"].get("podSelector"), labels)
    ]


def _pod_warnings(ctx: ActionContext, pod: dict[str, Any]) -> list[str]:
    """Why the deny-all would contain nothing (netpol.isolation_limits), then what it cannot do anyway."""
    limits = [NOT_EFFECTIVE_PREFIX + limit for limit in isolation_limits(ctx.k8s(), pod)]
    return [
        *limits,
        "a deny-all also blocks DNS and the instance metadata service for the pod; connections "
        "established before the policy may survive depending on the CNI",
    ]


@register_action
class IsolatePod(Action[PodParams]):
    spec = ActionSpec(
        id="k8s.isolate_pod",
        phase=Phase.CONTAINMENT,
        title="Isolate the exact suspect pod with a deny-all NetworkPolicy",
        rbac=(
            RbacRule(("",), ("pods",), ("get", "list", "patch")),
            RbacRule(
                ("networking.k8s.io",), ("networkpolicies",), ("get", "list", "create", "patch", "delete")
            ),
            RbacRule(("apps",), ("daemonsets",), ("list",)),
        ),
        destructive=True,
        reversible=True,
    )
    params_type = PodParams

    def check(self, ctx: ActionContext, params: PodParams) -> CheckOutcome:
        try:
            pod = read_pod(ctx, params)
        except NotFoundError as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        labels = {**(pod["metadata"].get("labels") or {}), **quarantine_labels(ctx)}
        allows = allow_policies_selecting(ctx, params.namespace, labels)
        warnings = _pod_warnings(ctx, pod) + [
            f"NetworkPolicy {p['metadata']['name']} also selects the pod and admits traffic: it will be "
            "patched to exclude quarantined pods"
            for p in allows
        ]
        current = pod["metadata"].get("labels") or {}
        return CheckOutcome(
            ok=True,
            detail=f"pod {params.namespace}/{params.pod_name} ({params.pod_uid}) on node "
            f"{pod.get('spec', {}).get('nodeName', '?')}",
            warnings=tuple(warnings),
            already_applied=all(current.get(k) == v for k, v in quarantine_labels(ctx).items())
            and not allows
            and any(p["metadata"]["name"] == policy_name(ctx) for p in _policies(ctx, params.namespace)),
        )

    def plan(self, ctx: ActionContext, params: PodParams) -> PlannedChange:
        pod = read_pod(ctx, params)
        labels = {**(pod["metadata"].get("labels") or {}), **quarantine_labels(ctx)}
        allows = allow_policies_selecting(ctx, params.namespace, labels)
        diff = [f"+ pod {params.pod_name} label {k}={v}" for k, v in quarantine_labels(ctx).items()]
        diff.append(
            f"+ NetworkPolicy {params.namespace}/{policy_name(ctx)}: select "
            f"{QUARANTINE_LABEL}=true,{CASE_LABEL}={ctx.case_id}; deny all ingress and egress"
        )
        diff += [
            f"~ NetworkPolicy {p['metadata']['name']}: podSelector += {QUARANTINE_LABEL} DoesNotExist"
            for p in allows
        ]
        return PlannedChange(
            summary=f"Isolate pod {params.namespace}/{params.pod_name} (uid {params.pod_uid})",
            diff=tuple(diff),
            blast_radius=(f"only pod {params.pod_name}; other replicas keep serving",),
            warnings=tuple(_pod_warnings(ctx, pod)),
        )

    def apply(self, ctx: ActionContext, params: PodParams) -> dict[str, Any]:
        require_live(ctx, self.spec)
        before = self._label_pod(ctx, params)
        self._ensure_policy(ctx, params.namespace)
        labels = {**(read_pod(ctx, params)["metadata"].get("labels") or {})}
        patched = {
            p["metadata"]["name"]: self._exclude_quarantined(ctx, p)
            for p in allow_policies_selecting(ctx, params.namespace, labels)
        }
        for policy in _policies(ctx, params.namespace):  # patched by an earlier run of this step
            note = (policy["metadata"].get("annotations") or {}).get(SELECTOR_BEFORE)
            if note and policy["metadata"]["name"] not in patched:
                patched[policy["metadata"]["name"]] = json.loads(note)
        return {
            "namespace": params.namespace,
            "pod_name": params.pod_name,
            "pod_uid": params.pod_uid,
            "policy_name": policy_name(ctx),
            "labels_before": before,
            "patched_policies": patched,
        }

    def _label_pod(self, ctx: ActionContext, params: PodParams) -> dict[str, str | None]:
        """Add the quarantine labels (uid-checked); return the values they replaced (None = absent)."""
        pod = read_pod(ctx, params)
        meta = pod["metadata"]
        annotations, labels = meta.get("annotations") or {}, meta.get("labels") or {}
        if LABELS_BEFORE in annotations:
            return dict(json.loads(annotations[LABELS_BEFORE]))
        before = {k: labels.get(k) for k in quarantine_labels(ctx)}
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": params.pod_uid}]
        if not meta.get("labels"):
            ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
        if not meta.get("annotations"):
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        ops.append(
            {
                "op": "add",
                "path": json_pointer("metadata", "annotations", LABELS_BEFORE),
                "value": json.dumps(before, sort_keys=True),
            }
        )
        ops += [
            {"op": "add", "path": json_pointer("metadata", "labels", k), "value": v}
            for k, v in quarantine_labels(ctx).items()
        ]
        api = ctx.k8s()
        with k8s_call(f"label pod {params.namespace}/{params.pod_name} for quarantine"):
            core(api).patch_namespaced_pod(params.pod_name, params.namespace, ops)
        return before

    def _ensure_policy(self, ctx: ActionContext, namespace: str) -> None:
        api = ctx.k8s()
        desired = deny_all_policy(ctx, namespace)
        existing = [p for p in _policies(ctx, namespace) if p["metadata"]["name"] == policy_name(ctx)]
        net = networking(api)
        with k8s_call(f"create NetworkPolicy {namespace}/{policy_name(ctx)}"):
            if not existing:
                net.create_namespaced_network_policy(namespace, desired)
            elif existing[0]["spec"] != desired["spec"]:
                ops = [{"op": "replace", "path": "/spec", "value": desired["spec"]}]
                net.patch_namespaced_network_policy(policy_name(ctx), namespace, ops)

    def _exclude_quarantined(self, ctx: ActionContext, policy: dict[str, Any]) -> dict[str, Any]:
        """Patch an allow policy so it stops selecting quarantined pods; return its original podSelector."""
        meta, original = policy["metadata"], policy["spec"]["podSelector"]
        selector = json.loads(json.dumps(original))
        selector.setdefault("matchExpressions", []).append(QUARANTINE_EXPRESSION)
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "replace", "path": "/spec/podSelector", "value": selector},
        ]
        if not meta.get("annotations"):
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        ops.append(
            {
                "op": "add",
                "path": json_pointer("metadata", "annotations", SELECTOR_BEFORE),
                "value": json.dumps(original, sort_keys=True),
            }
        )
        api = ctx.k8s()
        with k8s_call(f"exclude quarantined pods from NetworkPolicy {meta['namespace']}/{meta['name']}"):
            networking(api).patch_namespaced_network_policy(meta["name"], meta["namespace"], ops)
        return dict(original)

    def verify(self, ctx: ActionContext, params: PodParams, applied: dict[str, Any]) -> VerifyOutcome:
        pod = read_pod(ctx, params)
        labels = pod["metadata"].get("labels") or {}
        policies = {p["metadata"]["name"]: p for p in _policies(ctx, params.namespace)}
        ours = policies.get(policy_name(ctx))
        problems = []
        if ours is None:
            problems.append(f"NetworkPolicy {policy_name(ctx)} is missing")
        elif ours["spec"] != deny_all_policy(ctx, params.namespace)["spec"]:
            problems.append(f"NetworkPolicy {policy_name(ctx)} is not a deny-all for the case label")
        selected = self._selected_pods(ctx, params.namespace, ours)
        if [uid for uid, _name in selected] != [params.pod_uid]:
            problems.append(f"the policy selects {[n for _u, n in selected]}, not exactly {params.pod_name}")
        allows = [
            n
            for n, p in policies.items()
            if n != policy_name(ctx)
            and admits_traffic(p)
            and selector_matches(p["spec"].get("podSelector"), labels)
        ]
        if allows:
            problems.append(f"allow policies still select the pod: {', '.join(sorted(allows))}")
        limits = isolation_limits(ctx.k8s(), pod)
        return VerifyOutcome(
            ok=not problems,
            detail="; ".join(problems) or f"only {params.pod_name} is selected by the deny-all",
            observed={
                "selected": [n for _u, n in selected],
                "allow_policies": sorted(allows),
                "limits": limits,
            },
            effective=not limits,
            not_effective="; ".join(limits),
        )

    def _selected_pods(self, ctx: ActionContext, namespace: str, policy: dict[str, Any] | None) -> list[Any]:
        if policy is None:
            return []
        api = ctx.k8s()
        with k8s_call(f"list pods in {namespace}"):
            pods = to_json(api, core(api).list_namespaced_pod(namespace)).get("items", [])
        return [
            (p["metadata"]["uid"], p["metadata"]["name"])
            for p in pods
            if selector_matches(policy["spec"]["podSelector"], p["metadata"].get("labels"))
        ]

    def rollback(self, ctx: ActionContext, params: PodParams, applied: dict[str, Any]) -> None:
        """Restore patched policies, delete the deny-all, then put the pod's labels back (pod gone: skip)."""
        require_live(ctx, self.spec)
        api = ctx.k8s()
        net = networking(api)
        for name, selector in dict(applied.get("patched_policies", {})).items():
            ops = [
                {"op": "replace", "path": "/spec/podSelector", "value": selector},
                {"op": "remove", "path": json_pointer("metadata", "annotations", SELECTOR_BEFORE)},
            ]
            try:
                with k8s_call(f"restore NetworkPolicy {params.namespace}/{name}"):
                    net.patch_namespaced_network_policy(name, params.namespace, ops)
            except NotFoundError:
                continue
        try:
            with k8s_call(f"delete NetworkPolicy {params.namespace}/{policy_name(ctx)}"):
                net.delete_namespaced_network_policy(policy_name(ctx), params.namespace)
        except NotFoundError:
            pass
        self._unlabel_pod(ctx, params, dict(applied.get("labels_before", {})))

    def _unlabel_pod(self, ctx: ActionContext, params: PodParams, before: dict[str, str | None]) -> None:
        try:
            meta = read_pod(ctx, params)["metadata"]
        except NotFoundError:
            return
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": params.pod_uid}]
        for key, value in before.items():
            path = json_pointer("metadata", "labels", key)
            if value is not None:
                ops.append({"op": "add", "path": path, "value": value})
            elif key in (meta.get("labels") or {}):
                ops.append({"op": "remove", "path": path})
        if LABELS_BEFORE in (meta.get("annotations") or {}):
            ops.append({"op": "remove", "path": json_pointer("metadata", "annotations", LABELS_BEFORE)})
        with k8s_call(f"restore the labels of pod {params.namespace}/{params.pod_name}"):
            core(ctx.k8s()).patch_namespaced_pod(params.pod_name, params.namespace, ops)
