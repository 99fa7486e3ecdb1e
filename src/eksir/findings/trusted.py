"""Build the frozen finding models from values the reader has already checked, without re-validating them.

Why: pydantic validation of the nine models behind one `Finding` cost about a fifth of reading a
100,000-finding S3 export, and `model_construct` is slower still (it re-walks every field in Python). The
reader never hands pydantic anything to coerce: every value comes from a type-checking accessor in
`normalise` / `actor` (exact `str`, `bool`, `int`, `float`, aware `datetime`, enum members, tuples of
already-built models), so validation could only ever accept them unchanged. `trusted` therefore sets
exactly the state a validated instance has: `__dict__` holding every field in declaration order,
`model_fields_set` naming every field (the reader always passes all of them), no extras, no private state.

The guarantee is tested, not assumed: `tests/findings/test_trusted.py` re-validates every model the reader
builds (fixtures, real samples and hypothesis-mutated findings) and checks it equals the trusted one, field
order and fields-set included. `Finding(...)` itself still validates for every other caller.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_setattr = object.__setattr__


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of `cls` holding `values` (every field, declaration order, already the declared types)."""
    model = _new(cls)
    _setattr(model, "__dict__", values)
    _setattr(model, "__pydantic_fields_set__", set(values))
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model
