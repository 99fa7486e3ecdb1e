"""The Action contract every response step implements (see DESIGN.md, "The Action contract").

An action declares what it needs (IAM actions, Kubernetes RBAC rules) and what it is (destructive,
reversible) as data, so `eksir permissions` can derive least-privilege policies and the engine can decide
what needs approval. Its lifecycle is check -> plan -> apply (idempotent) -> verify (reads state back) ->
rollback (restores the recorded before-state). Actions never prompt, print or persist: the engine does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from eksir.clients.aws_types import ClientFactory


class Phase(StrEnum):
    EVIDENCE = "evidence"
    CONTAINMENT = "containment"
    ERADICATION = "eradication"
    RECOVERY = "recovery"
    POST_INCIDENT = "post-incident"


@dataclass(frozen=True)
class RbacRule:
    """One Kubernetes RBAC rule the action needs (becomes a rule of the responder ClusterRole)."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()
    """Only these objects (RBAC `resourceNames`); required with `impersonate`, which is never unbounded."""


@dataclass(frozen=True)
class ActionSpec:
    id: str
    phase: Phase
    title: str
    iam_actions: tuple[str, ...] = ()
    rbac: tuple[RbacRule, ...] = ()
    destructive: bool = False
    reversible: bool = True
    description: str = ""


class ActionParams(BaseModel):
    """Base of every action's typed parameters; unknown fields are an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=ActionParams)


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    detail: str
    warnings: tuple[str, ...] = ()
    already_applied: bool = False


@dataclass(frozen=True)
class PlannedChange:
    """What `apply` would change, for a person to approve: a summary, a diff and the blast radius."""

    summary: str
    diff: tuple[str, ...] = ()
    blast_radius: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyOutcome:
    """What `verify` read back. `ok`: the change is in place. `effective=False` (with `not_effective`, the
    reason): in place, yet it does not do its job (a NetworkPolicy no agent enforces, a pod the CNI never
    applies policies to); the engine records such a step as `not-effective`, never as verified."""

    ok: bool
    detail: str
    observed: dict[str, Any] = field(default_factory=dict)
    effective: bool = True
    not_effective: str = ""


@dataclass
class ActionContext:
    """What an action may use. Clients are factories so an action only builds what it needs.

    `aws(service)` returns a boto3 client for the case's account/region (standard retries, endpoint
    configuration honoured), typed per service for mypy (clients/aws_types.py); `k8s()` returns a
    `kubernetes.client.ApiClient`. `case_id` names everything the action creates (`eksir.io/case-id`
    label/tag) so it can always be found and undone.
    """

    case_id: str
    aws: ClientFactory
    k8s: Callable[[], Any]
    region: str | None = None
    account_id: str | None = None
    dry_run: bool = True
    extras: dict[str, Any] = field(default_factory=dict)


class Action(ABC, Generic[P]):
    """Subclass per action: set `spec` and `params_type`, implement the five lifecycle methods.

    `apply` returns a JSON-serialisable record (before-state, ids created) that the engine stores in the
    case and hands back to `verify` and `rollback`; it must be idempotent (a second call is a no-op that
    returns an equivalent record). Errors are eksir errors (TemporaryError, PermissionDeniedError, ...).
    """

    spec: ClassVar[ActionSpec]
    params_type: ClassVar[type[ActionParams]]

    @abstractmethod
    def check(self, ctx: ActionContext, params: P) -> CheckOutcome: ...

    @abstractmethod
    def plan(self, ctx: ActionContext, params: P) -> PlannedChange: ...

    @abstractmethod
    def apply(self, ctx: ActionContext, params: P) -> dict[str, Any]: ...

    @abstractmethod
    def verify(self, ctx: ActionContext, params: P, applied: dict[str, Any]) -> VerifyOutcome: ...

    @abstractmethod
    def rollback(self, ctx: ActionContext, params: P, applied: dict[str, Any]) -> None: ...


ACTION_CASE_LABEL = "eksir.io/case-id"
