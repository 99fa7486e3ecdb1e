"""Read a policy file so that every validation error names its line: `FILE:LINE: message` (exit 3).

Why PyYAML's composer: it is already a dependency and its nodes carry `start_mark` (line, column) for every
key and value; we compose the node tree, build plain data from it while remembering where each path came from,
validate with pydantic, and map each error's location back to the node it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eksir.errors import BadInputError
from eksir.policy.model import ResponsePolicy

MAX_POLICY_BYTES = 1 << 20
Lines = dict[tuple[str | int, ...], int]


def load_policy(path: Path) -> ResponsePolicy:
    """Read and validate `path`; raises BadInputError(`path:line: message`) on any problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the policy: {exc.strerror}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise BadInputError(f"{path}:1: the policy is larger than {MAX_POLICY_BYTES} bytes")
    return parse_policy(data.decode("utf-8", errors="replace"), str(path))


def parse_policy(text: str, name: str) -> ResponsePolicy:
    """Validate policy YAML `text`; errors read `name:line: message`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInputError(f"{name}:{line}: not valid YAML: {problem}") from None
    if node is None:
        return ResponsePolicy()
    lines: Lines = {}
    value = _build(node, (), lines)
    if not isinstance(value, dict):
        raise BadInputError(f"{name}:{node.start_mark.line + 1}: a policy is a mapping (version, rules...)")
    try:
        return ResponsePolicy.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = tuple(first["loc"])
        line = _line_of(where, lines, node.start_mark.line + 1)
        path = ".".join(str(part) for part in where) or "(top)"
        raise BadInputError(f"{name}:{line}: {path}: {first['msg']}") from None


def _build(node: yaml.Node, path: tuple[str | int, ...], lines: Lines) -> Any:
    """Plain data from a composed node, recording the line of every path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _line_of(loc: tuple[str | int, ...], lines: Lines, fallback: int) -> int:
    """The line of the deepest part of `loc` the file has (a missing key: its parent's line)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return fallback
