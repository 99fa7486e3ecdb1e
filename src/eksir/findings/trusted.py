"""Build the frozen finding models from values the reader has already checked, without re-validating them.

Why: pydantic validation of the nine models behind one `Finding` cost about a fifth of reading a
100,000-finding S3 export, and `model_construct` is slower still (it re-walks every field in Python). The
reader never hands pydantic anything to coerce: every value comes from a type-checking accessor in
`normalise` / `actor` (exact `str`, `bool`, `int`, `float`, aware `datetime`, enum members, tuples of
already-built models), so validation could only ever accept them unchanged. `trusted` therefore sets
exactly the state a validated instance has: `__dict__` holding every field in declaration order,
`model_fields_set` naming every field (the reader always passes all of them; see `_FieldNames`), no extras,
no private state.

The guarantee is tested, not assumed: `tests/findings/test_trusted.py` re-validates every model the reader
builds (fixtures, real samples and hypothesis-mutated findings) and checks it equals the trusted one, field
order and fields-set included. `Finding(...)` itself still validates for every other caller.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_setattr = object.__setattr__


class _FieldNames(set[str]):
    """Every field name of one model class, shared by all its trusted instances (read-only).

    A validated model owns a fresh `set` of the fields it was given; the reader always gives all of them,
    so one shared set per class says the same thing. Sharing saves nine set allocations (about 6 KB) per
    finding, which on a 100,000-finding export is 600 MB of memory the process no longer touches. The set
    refuses in-place changes; pydantic only ever changes a *copy* (`model_copy`, `__copy__`,
    `__deepcopy__`), and `copy` of this set is a plain, mutable `set`.
    """

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)

    def _refuse(self, *args: Any) -> NoReturn:
        raise TypeError("the fields set of a finding model is read-only; copy it first")

    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse


_FIELD_NAMES: dict[type[BaseModel], _FieldNames] = {}


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of `cls` holding `values` (every field, declaration order, already the declared types)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = _FieldNames(cls.model_fields)
    model = _new(cls)
    _setattr(model, "__dict__", values)
    _setattr(model, "__pydantic_fields_set__", names if len(values) == len(names) else set(values))
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model
