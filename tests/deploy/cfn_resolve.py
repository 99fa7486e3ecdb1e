"""Resolve a template's intrinsic functions (Ref, Fn::GetAtt, Fn::Sub) from a deployed stack's values.

Why in the tests: moto's CloudFormation skips some resource types and properties; the tests create those
directly from the template's own properties, which needs the values CloudFormation would substitute (the
queue's ARN, the bucket's name). Only the functions eksir's templates use are handled; anything else fails
loudly, so a new intrinsic in a template cannot be silently passed through.
"""

from __future__ import annotations

import re
from typing import Any

_SUB = re.compile(r"\$\{([^}]+)\}")


class StackValues:
    """`Ref` values (physical ids, parameters, pseudo parameters) and `GetAtt` values of one stack."""

    def __init__(self, refs: dict[str, str], attrs: dict[str, str]) -> None:
        self.refs = refs
        self.attrs = attrs

    def _lookup(self, name: str) -> str:
        return self.attrs[name] if "." in name else self.refs[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            return self.attrs[".".join(value["Fn::GetAtt"])]
        if set(value) == {"Fn::Sub"}:
            assert isinstance(value["Fn::Sub"], str), "only the one-argument form of Fn::Sub is used"
            return _SUB.sub(lambda match: self._lookup(match[1]), value["Fn::Sub"])
        assert not any(key.startswith("Fn::") for key in value), f"unhandled intrinsic in {value}"
        return {key: self.resolve(item) for key, item in value.items()}
