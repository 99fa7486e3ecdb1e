"""`k8s.checkpoint_container`: a CRIU checkpoint of the suspect container through the kubelet.

Why: a checkpoint holds every memory page and open file of the container's processes at one instant, which
no crictl/ctr capture does. The kubelet's checkpoint API (`POST /checkpoint/{namespace}/{pod}/{container}`,
beta and on by default since Kubernetes 1.30) asks the runtime for it and answers `{"items": [<path>]}`: the
archive `checkpoint-<pod>_<namespace>-<container>-<timestamp>.tar` under the kubelet's root directory
(`/var/lib/kubelet/checkpoints` by default). eksir reaches the kubelet through the API server's node proxy
(`/api/v1/nodes/{node}/proxy/checkpoint/...`), so no credential for the node is needed; that path needs RBAC
`create` on `nodes/proxy`, a powerful permission (README, permissions).

A node change, recorded: the archive is written to the node's disk and stays there (it is evidence, and it
holds the container's secrets in clear: the snapshot of the node's volumes keeps it), so the step records the
archive paths in the node annotation `eksir.io/checkpoints` as well as in the case; `verify` reads that
annotation back. Not reversible: rollback removes the annotation entry but never the archive. Documented
failures: 404 when the feature gate is off or the container is unknown, 500 when the runtime cannot
checkpoint (containerd 1.x does not implement it; without CRIU it is disabled): the step fails, and the
crictl/ctr capture (`ssm.capture_volatile`) stands regardless.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from pydantic import Field

from eksir.actions.base import (
    Action,
    ActionContext,
    ActionParams,
    ActionSpec,
    CheckOutcome,
    Phase,
    PlannedChange,
    RbacRule,
    VerifyOutcome,
)
from eksir.actions.containment.casework import (
    K8S_NAME_PATTERN,
    UUID_PATTERN,
    annotation_ops,
    require_live,
)
from eksir.actions.containment.k8s_node import find_node, read_node
from eksir.actions.containment.shared_marks import patch_fresh, version_guard
from eksir.actions.registry import register_action
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core, k8s_write
from eksir.errors import NotFoundError, StepFailedError, TemporaryError

ANNOTATION = "eksir.io/checkpoints"
_ARCHIVE = re.compile(r"(^|/)checkpoint-[^/]+\.tar$")
_RBAC = (
    RbacRule(("",), ("nodes/proxy",), ("create", "get")),
    RbacRule(("",), ("nodes",), ("get", "patch")),
    RbacRule(("",), ("pods",), ("get",)),
)


class CheckpointParams(ActionParams):
    node_name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)
    namespace: str = Field(pattern=K8S_NAME_PATTERN, max_length=63)
    pod_name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)
    pod_uid: str = Field(pattern=UUID_PATTERN)
    container_name: str = Field(pattern=K8S_NAME_PATTERN, max_length=63)
    timeout_seconds: int = Field(default=300, ge=10, le=3600)


def _write(ctx: ActionContext, node_name: str, ops: list[dict[str, Any]], doing: str) -> None:
    """Patch the node; ConflictError (retried by `patch_fresh`) when it changed since it was read."""
    with k8s_write(f"{doing} node {node_name}"):
        core(ctx.k8s()).patch_node(node_name, ops)


def _entries(node: dict[str, Any]) -> list[dict[str, Any]]:
    raw = ((node.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _mine(
    ctx: ActionContext, params: CheckpointParams, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    return [
        e
        for e in entries
        if e.get("case") == ctx.case_id
        and e.get("pod_uid") == params.pod_uid
        and e.get("container") == params.container_name
    ]


def checkpoint_path(params: CheckpointParams) -> str:
    """The node-proxy path of the kubelet's checkpoint endpoint for this container."""
    parts = (params.node_name, params.namespace, params.pod_name, params.container_name)
    node, ns, pod, container = (quote(p, safe="") for p in parts)
    return f"/api/v1/nodes/{node}/proxy/checkpoint/{ns}/{pod}/{container}"


@register_action
class CheckpointContainer(Action[CheckpointParams]):
    spec = ActionSpec(
        id="k8s.checkpoint_container",
        phase=Phase.EVIDENCE,
        title="Checkpoint the suspect container with CRIU through the kubelet (--checkpoint)",
        rbac=_RBAC,
        destructive=True,
        reversible=False,
        description="POST /checkpoint/{ns}/{pod}/{container} through the node proxy: the container is frozen "
        "while CRIU dumps it and its memory is written to the node's disk (recorded on the node).",
    )
    params_type = CheckpointParams

    def check(self, ctx: ActionContext, params: CheckpointParams) -> CheckOutcome:
        try:
            node = read_node(ctx, params.node_name)
            self._running_container(ctx, params)
        except (NotFoundError, StepFailedError) as exc:
            return CheckOutcome(ok=False, detail=exc.message)
        done = bool(_mine(ctx, params, _entries(node)))
        return CheckOutcome(
            ok=True,
            detail=f"container {params.container_name} of {params.namespace}/{params.pod_name} on "
            f"{params.node_name}" + (": already checkpointed for this case" if done else ""),
            already_applied=done,
        )

    def plan(self, ctx: ActionContext, params: CheckpointParams) -> PlannedChange:
        return PlannedChange(
            summary=f"Checkpoint container {params.container_name} of {params.namespace}/{params.pod_name}",
            diff=(
                f"+ node {params.node_name}: checkpoint archive under the kubelet's checkpoints directory",
                f"~ node {params.node_name} annotation {ANNOTATION} (+ this archive)",
            ),
            blast_radius=(
                "the container is frozen while CRIU dumps it (seconds per GiB of memory), then runs on",
                "the archive holds the container's memory, secrets included, on the node's disk",
            ),
        )

    def _running_container(self, ctx: ActionContext, params: CheckpointParams) -> None:
        """Raise NotFoundError/StepFailedError unless the pod (by uid) runs the container on the node."""
        api = ctx.k8s()
        with k8s_call(f"read pod {params.namespace}/{params.pod_name}"):
            pod = api.sanitize_for_serialization(
                core(api).read_namespaced_pod(params.pod_name, params.namespace)
            )
        if pod["metadata"].get("uid") != params.pod_uid:
            raise StepFailedError(f"pod {params.namespace}/{params.pod_name} was replaced (uid changed)")
        if (pod.get("spec") or {}).get("nodeName") != params.node_name:
            raise StepFailedError(f"pod {params.pod_name} no longer runs on node {params.node_name}")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        running = any(
            s.get("name") == params.container_name and (s.get("state") or {}).get("running") for s in statuses
        )
        if not running:
            raise StepFailedError(f"container {params.container_name} is not running: nothing to checkpoint")

    def apply(self, ctx: ActionContext, params: CheckpointParams) -> dict[str, Any]:
        """POST the checkpoint, then record the archive on the node. Raises StepFailedError (404/500 from the
        kubelet: feature off, runtime without CRI checkpoint or CRIU), PermissionDeniedError (nodes/proxy)."""
        require_live(ctx, self.spec)
        node = read_node(ctx, params.node_name)
        earlier = _mine(ctx, params, _entries(node))
        if earlier:
            return {"node_uid": node["metadata"]["uid"], "archives": [e["archive"] for e in earlier]}
        self._running_container(ctx, params)
        archives = self._checkpoint(ctx, params)
        self._record(ctx, params, archives)
        return {"node_uid": node["metadata"]["uid"], "archives": archives}

    def _checkpoint(self, ctx: ActionContext, params: CheckpointParams) -> list[str]:
        api = ctx.k8s()
        doing = f"checkpoint container {params.container_name} of {params.namespace}/{params.pod_name}"
        try:
            with k8s_call(doing):
                answer = api.call_api(
                    checkpoint_path(params),
                    "POST",
                    query_params=[("timeout", params.timeout_seconds)],
                    header_params={"Accept": "application/json"},
                    response_type="object",
                    auth_settings=["BearerToken"],
                    _return_http_data_only=True,
                    _request_timeout=(5, params.timeout_seconds + 30),
                )
        except NotFoundError as exc:
            raise StepFailedError(
                f"{doing}: the kubelet answered 404 (ContainerCheckpoint off, or the container unknown): "
                f"{exc.message}"
            ) from exc
        except TemporaryError as exc:  # a 500 passed through the proxy: the runtime cannot checkpoint
            raise StepFailedError(
                f"{doing}: the kubelet could not checkpoint (a runtime without the CRI checkpoint or without "
                f"CRIU); the crictl/ctr capture stands: {exc.message}"
            ) from exc
        items = answer.get("items") if isinstance(answer, dict) else None
        archives = [str(i) for i in items or [] if isinstance(i, str)]
        if not archives:
            raise StepFailedError(f"{doing}: the kubelet answered without an archive path ({answer!r:.200})")
        return archives

    def _record(self, ctx: ActionContext, params: CheckpointParams, archives: list[str]) -> None:
        """Append the archives to the node's annotation: a merge with other cases' entries, guarded by
        resourceVersion and recomputed from a fresh read when another case wrote in between."""
        new = [
            {"case": ctx.case_id, "pod_uid": params.pod_uid, "container": params.container_name, "archive": a}
            for a in archives
        ]

        def ops(node: dict[str, Any]) -> list[dict[str, Any]]:
            meta = node["metadata"]
            return [
                *version_guard(meta),
                *annotation_ops(meta, {ANNOTATION: json.dumps(_entries(node) + new)}),
            ]

        patch_fresh(
            lambda: read_node(ctx, params.node_name),
            ops,
            lambda found: _write(ctx, params.node_name, found, "record the checkpoint on"),
        )

    def verify(self, ctx: ActionContext, params: CheckpointParams, applied: dict[str, Any]) -> VerifyOutcome:
        """The node carries this case's archive entries, each a path the kubelet's naming allows."""
        mine = _mine(ctx, params, _entries(read_node(ctx, params.node_name)))
        archives = [str(e.get("archive")) for e in mine]
        ok = bool(archives) and all(_ARCHIVE.search(a) for a in archives)
        detail = (
            f"checkpoint archive on node {params.node_name}: {', '.join(archives)} (stays on the node's disk)"
            if ok
            else f"node {params.node_name} records no checkpoint archive for this container"
        )
        return VerifyOutcome(ok=ok, detail=detail, observed={"archives": archives})

    def rollback(self, ctx: ActionContext, params: CheckpointParams, applied: dict[str, Any]) -> None:
        """Remove this case's entries from the annotation (other cases' entries stay, also when they write
        at the same time); the archive itself stays (evidence)."""
        require_live(ctx, self.spec)

        def ops(node: dict[str, Any]) -> list[dict[str, Any]]:
            mine = _mine(ctx, params, _entries(node))
            if node["metadata"]["uid"] != applied.get("node_uid") or not mine:
                return []
            rest = [e for e in _entries(node) if e not in mine]
            meta = node["metadata"]
            return [
                *version_guard(meta),
                *annotation_ops(meta, {ANNOTATION: json.dumps(rest) if rest else None}),
            ]

        patch_fresh(
            lambda: find_node(ctx, params.node_name),
            ops,
            lambda found: _write(ctx, params.node_name, found, "remove the checkpoint record from"),
        )
