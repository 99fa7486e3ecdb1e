"""nextToken pagination for the EKS list calls, written out so a botocore Stubber sees exact requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

_MAX_PAGES = 100  # a runaway token loop must end; 100 pages of 100 is far beyond any real cluster


def paged(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> Iterator[Any]:
    """Yield every element of `key` over all pages of an EKS `List*` call (caller wraps in aws_call)."""
    token: str | None = None
    for _ in range(_MAX_PAGES):
        answer = call(**params, **({"nextToken": token} if token else {}))
        yield from answer.get(key) or []
        token = answer.get("nextToken")
        if not token:
            return
