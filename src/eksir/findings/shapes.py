"""Canonical (wire, camelCase) key names for a GuardDuty finding, derived from botocore's own service model.

boto3 and the AWS CLI name keys after the shape *member* (`SourceIps`), while the REST wire form, the S3
export and EventBridge use the member's `locationName` (`sourceIPs`). Ten members differ by more than the
first letter's case, so a lower-first-letter rule is wrong and a hand-written alias table would rot as the
service model grows. Instead we walk the `Finding` shape once, precompute for every structure a lookup
table "any accepted spelling -> (wire name, child plan)", and reuse it for every finding (the plan is
cached, so botocore's model is loaded once per process and only when a finding is read).

The same walk coerces scalar strings to the type the model declares: Security Hub flattens every
GuardDuty field into a string (`"false"`, `"74"`), and the model knows which of those are booleans or
numbers. Keys the model does not know are kept unchanged (GuardDuty adds fields before botocore ships
them, and EventBridge `additionalInfo` is free-form), and explicit `null`s pass through untouched.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from eksir.clients.aws_models import service_model

# Scalar kinds we coerce; every other botocore type (string, timestamp, blob) is passed through as-is,
# because timestamps are parsed later in whatever form they arrive.
STRUCT = "structure"
LIST = "list"
MAP = "map"
BOOL = "boolean"
INT = "integer"
FLOAT = "double"
OTHER = "other"

_KINDS = {"structure": STRUCT, "list": LIST, "map": MAP, "boolean": BOOL, "integer": INT, "long": INT}
_KINDS |= {"double": FLOAT, "float": FLOAT}


@dataclass(slots=True, eq=False)
class Node:
    """One shape in the plan: its kind and, for containers, what is inside."""

    kind: str
    shape_name: str = ""
    # For STRUCT: every accepted spelling of a member -> (wire name, member node).
    members: dict[str, tuple[str, Node]] = field(default_factory=dict)
    # For LIST / MAP: the element (value) node.
    item: Node | None = None


def _build(shape: Any, cache: dict[str, Node]) -> Node:
    """Translate a botocore shape into a `Node`, sharing nodes between structures of the same name."""
    kind = _KINDS.get(shape.type_name, OTHER)
    if kind == STRUCT:
        if shape.name in cache:
            return cache[shape.name]
        node = Node(kind, shape.name)
        cache[shape.name] = node  # registered before recursing, so a recursive model would still terminate
        wire_entries: dict[str, tuple[str, Node]] = {}
        for member_name, member in shape.members.items():
            wire = member.serialization.get("name", member_name)
            wire_entries[wire] = (wire, _build(member, cache))
        aliases: dict[str, tuple[str, Node]] = {}
        for member_name, member in shape.members.items():
            wire = member.serialization.get("name", member_name)
            aliases.setdefault(member_name, wire_entries[wire])
        for spelling, entry in list(wire_entries.items()) + list(aliases.items()):
            aliases.setdefault(spelling.lower(), entry)
        # Wire names win over member names and lower-cased spellings: the canonical form must round-trip.
        node.members = aliases | wire_entries
        return node
    if kind == LIST:
        return Node(kind, shape.name, item=_build(shape.member, cache))
    if kind == MAP:
        return Node(kind, shape.name, item=_build(shape.value, cache))
    return Node(kind, shape.name)


@functools.cache
def finding_plan() -> Node:
    """The plan for botocore's GuardDuty `Finding` shape (loads the service model on first use)."""
    model = service_model("guardduty")  # ~0.3 s: only when a finding is read, once per process
    return _build(model.shape_for("Finding"), {})


def wire_name_pairs() -> dict[tuple[str, str], str]:
    """(structure shape, member name) -> wire name for every member: used to document and test the mapping."""
    pairs: dict[tuple[str, str], str] = {}
    seen: set[int] = set()

    def visit(node: Node) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if node.item is not None:
            visit(node.item)
        for spelling, (wire, child) in node.members.items():
            if spelling[:1].isupper():
                pairs[(node.shape_name, spelling)] = wire
            visit(child)

    visit(finding_plan())
    return pairs


def is_wire_top_level(finding: dict[str, Any], node: Node) -> bool:
    """True when every top-level key the model knows is already spelled as its wire name.

    S3 exports and EventBridge events are written by GuardDuty in the wire form, so re-keying them is pure
    cost (it dominated reading a 100,000-finding export). A finding whose top level is wire-cased is taken
    as canonical; its values are still read through type-checking accessors, so a stray odd value becomes
    "unknown", never a wrong value. Anything else (PascalCase, mixed) goes through `to_wire`.
    """
    members = node.members
    for key in finding:
        entry = members.get(key)
        if entry is not None and entry[0] != key:
            return False
    return "type" in finding


def to_wire(value: Any, node: Node) -> Any:
    """Return `value` re-keyed to wire names and with scalars coerced to the model's types."""
    kind = node.kind
    if value is None:
        return None
    if kind == STRUCT:
        if type(value) is not dict:
            return _struct_from_string(value, node)
        members = node.members
        out: dict[str, Any] = {}
        for key, item in value.items():
            entry = members.get(key)
            if entry is None and type(key) is str:
                entry = members.get(key.lower())
            if entry is None:
                out[key] = item
            else:
                out[entry[0]] = to_wire(item, entry[1])
        return out
    if kind == LIST:
        if type(value) is not list:
            value = _list_from_string(value)
            if type(value) is not list:
                return value
        item_node = node.item
        assert item_node is not None
        if item_node.kind == OTHER:
            return value
        return [to_wire(item, item_node) for item in value]
    if kind == MAP:
        if type(value) is not dict or node.item is None or node.item.kind == OTHER:
            return value
        return {key: to_wire(item, node.item) for key, item in value.items()}
    if type(value) is str and kind != OTHER:
        return _coerce_scalar(value, kind)
    return value


def _struct_from_string(value: Any, node: Node) -> Any:
    """A structure flattened to a string (Security Hub): `""` means absent, `"{...}"` is embedded JSON."""
    if type(value) is not str:
        return value
    text = value.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            return to_wire(orjson.loads(text), node)
        except orjson.JSONDecodeError:
            return value
    return value


def _list_from_string(value: Any) -> Any:
    """A list flattened to a string: `""` is empty, `"[...]"` is JSON, otherwise comma-separated."""
    if type(value) is not str:
        return value
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return value
    return [part.strip() for part in text.split(",")]


def _coerce_scalar(value: str, kind: str) -> Any:
    """Turn `"true"`/`"74"`/`"42.5"` into the declared type; leave anything unparseable as the string."""
    text = value.strip()
    if kind == BOOL:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return value
    try:
        if kind == INT:
            return int(text)
        number = float(text)
    except ValueError:
        return value
    return number if math.isfinite(number) else value
