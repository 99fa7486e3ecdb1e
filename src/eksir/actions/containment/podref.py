"""The suspect pod as the actions name it: namespace, name *and* uid, and the one uid-checked way to read it.

Why the uid: a Deployment or StatefulSet can replace the suspect pod with a new one of the same name (always
so for StatefulSets); acting on the name alone would isolate, orphan or label an innocent replacement.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from eksir.actions.base import ActionContext, ActionParams
from eksir.actions.containment.casework import K8S_NAME_PATTERN, UUID_PATTERN, to_json
from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core
from eksir.errors import NotFoundError


class PodParams(ActionParams):
    namespace: str = Field(pattern=K8S_NAME_PATTERN, max_length=63)
    pod_name: str = Field(pattern=K8S_NAME_PATTERN)
    pod_uid: str = Field(pattern=UUID_PATTERN)


def read_pod(ctx: ActionContext, params: PodParams) -> dict[str, Any]:
    """The pod as JSON; NotFoundError when it is gone or the name now belongs to another pod (other uid)."""
    api = ctx.k8s()
    with k8s_call(f"read pod {params.namespace}/{params.pod_name}"):
        pod = to_json(api, core(api).read_namespaced_pod(params.pod_name, params.namespace))
    if pod["metadata"]["uid"] != params.pod_uid:
        raise NotFoundError(
            f"pod {params.namespace}/{params.pod_name} now has uid {pod['metadata']['uid']}, not "
            f"{params.pod_uid}: the suspect pod is gone and this is a replacement"
        )
    return dict(pod)
