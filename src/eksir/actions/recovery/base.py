"""What every recovery action shares: a `describe` for evidence, and IAM's not-found as an answer.

Why `describe` lives on the action: the description preserved as evidence before a deletion must be the
same one `apply` records as its before-state (and rollback rebuilds from), so both come from one method.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from eksir.actions.base import Action, ActionContext, ActionParams
from eksir.clients.aws import aws_call
from eksir.errors import NotFoundError

P = TypeVar("P", bound=ActionParams)
T = TypeVar("T")


class RecoveryAction(Action[P]):
    """An action whose target can be described (read-only) for the evidence store before it is changed."""

    @abstractmethod
    def describe(self, ctx: ActionContext, params: P) -> dict[str, Any] | None:
        """The full current description, or None when the resource does not exist."""


def aws_or_none(doing: str, call: Callable[[], T]) -> T | None:
    """Run one AWS call; None when the resource does not exist, other errors raised as eksir errors."""
    try:
        with aws_call(doing):
            return call()
    except NotFoundError:
        return None


def paged(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated list call."""
    with aws_call(f"{operation} {kwargs}"):
        pages = client.get_paginator(operation).paginate(**kwargs)
        return [item for page in pages for item in page[key]]
