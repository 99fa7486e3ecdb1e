"""A reference to one Kubernetes object by its REST path: what the audit log names and recovery acts on.

A model, not a client: the recovery inventory (a pure playbook) builds these from audit events, and the
REST helpers in clients/k8s_rest.py turn them into calls.
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, ConfigDict


class ObjectRef(BaseModel):
    """Where one namespaced or cluster-scoped object lives (the audit log's objectRef, normalised)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_group: str = ""
    api_version: str = "v1"
    resource: str
    namespace: str | None = None
    name: str

    def collection(self) -> str:
        base = f"/apis/{self.api_group}/{self.api_version}" if self.api_group else f"/api/{self.api_version}"
        scope = f"/namespaces/{quote(self.namespace, safe='')}" if self.namespace else ""
        return f"{base}{scope}/{self.resource}"

    def path(self) -> str:
        return f"{self.collection()}/{quote(self.name, safe='')}"

    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource} {where}{self.name}"
