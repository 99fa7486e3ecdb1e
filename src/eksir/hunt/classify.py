"""Classification rules as data: what a responder should think of each call the attacker made.

Rules live in YAML (`rules/cloudtrail.yaml`, `rules/kubernetes.yaml`, shipped in the package) so a team can
add its own with `--rules FILE` without touching code. Every file is validated with pydantic on load; a bad
rule is a `BadInputError` naming the file and the rule, never a crash mid-hunt. The highest-priority rule
that matches gives the primary category; every other matching rule contributes its category as a tag.
Files are parsed with libyaml's safe loader when PyYAML has it (the same safe constructors, about ten times
faster than the pure-Python parser, which spent longer on the shipped rules than a one-file hunt scanning).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eksir.errors import BadInputError

_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Category(StrEnum):
    """Closed set of categories, so a typo in a user rule is caught on load."""

    DATA_ACCESS = "data-access"
    EXFILTRATION = "exfiltration"
    EXECUTION = "execution"
    IDENTITY_PERSISTENCE = "identity-persistence"
    DEFENSE_EVASION = "defense-evasion"
    AUTHENTICATION = "authentication"
    RESOURCE_CREATION = "resource-creation"
    TAGGING = "tagging"
    DELETION = "deletion"
    MODIFICATION = "modification"
    DISCOVERY = "discovery"
    READ = "read"
    PRIVILEGED_WORKLOAD = "privileged-workload"
    HOST_ACCESS = "host-access"
    POD_EXEC = "pod-exec"
    RBAC_CHANGE = "rbac-change"
    SECRET_ACCESS = "secret-access"
    TOKEN_REQUEST = "token-request"
    WORKLOAD_PERSISTENCE = "workload-persistence"
    CERTIFICATE_REQUEST = "certificate-request"
    ADMISSION_CHANGE = "admission-change"
    OTHER = "other"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Strict):
    """A test on one path of the record (`a.b[].c`: `[]` means any element of a list)."""

    path: str = Field(min_length=1)
    exists: bool | None = None
    equals: Any = None
    one_of: list[Any] | None = Field(default=None, alias="in")
    glob: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        tests = [
            self.exists is not None,
            self.equals is not None,
            self.one_of is not None,
            self.glob is not None,
        ]
        if sum(tests) != 1:
            raise ValueError(f"condition on {self.path!r} needs exactly one of exists/equals/in/glob")
        return self

    def holds(self, record: Mapping[str, Any]) -> bool:
        """Whether the record satisfies this condition."""
        values = list(resolve(record, self.path))
        if self.exists is not None:
            return bool(values) == self.exists
        if self.equals is not None:
            return any(v == self.equals for v in values)
        if self.one_of is not None:
            return any(v in self.one_of for v in values if not isinstance(v, (dict, list)))
        return any(isinstance(v, str) and fnmatchcase(v, self.glob or "") for v in values)


class Rule(_Strict):
    """One rule: CloudTrail rules use event_source/event_name, Kubernetes rules verb/resource."""

    id: str = Field(min_length=1)
    category: Category
    priority: int = 100
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    event_source: list[str] = Field(default_factory=lambda: ["*"])
    event_name: list[str] = Field(default_factory=lambda: ["*"])
    verb: list[str] = Field(default_factory=lambda: ["*"])
    resource: list[str] = Field(default_factory=lambda: ["*"])
    subresource: list[str] | None = None
    when: list[Condition] = Field(default_factory=list)
    when_any: list[Condition] = Field(default_factory=list)

    def matches(self, kind: str, record: Mapping[str, Any]) -> bool:
        """Whether the rule applies to a CloudTrail record or (kind 'kubernetes') an audit event."""
        if kind == "cloudtrail":
            heads = (
                (self.event_source, record.get("eventSource")),
                (self.event_name, record.get("eventName")),
            )
        else:
            found = record.get("objectRef")
            ref: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            heads = ((self.verb, record.get("verb")), (self.resource, ref.get("resource")))
            sub = ref.get("subresource") or ""
            if self.subresource is not None and not any(fnmatchcase(sub, p) for p in self.subresource):
                return False
        for patterns, value in heads:
            if not isinstance(value, str) or not any(fnmatchcase(value, p) for p in patterns):
                return False
        if not all(c.holds(record) for c in self.when):
            return False
        return not self.when_any or any(c.holds(record) for c in self.when_any)


class ResourceField(_Strict):
    """Where a call names a resource, and how to turn the value into an ARN for tag look-up."""

    event_source: list[str] = Field(default_factory=lambda: ["*"])
    path: str = Field(min_length=1)
    arn: str = "{value}"


class RuleFile(_Strict):
    """The YAML document."""

    kind: Literal["cloudtrail", "kubernetes"]
    rules: list[Rule] = Field(default_factory=list)
    resources: list[ResourceField] = Field(default_factory=list)


@dataclass(frozen=True)
class Classification:
    """The verdict on one record: primary category, the rule that gave it, and the other categories/tags."""

    category: Category
    rule_id: str
    tags: tuple[str, ...]


def resolve(record: Mapping[str, Any], path: str) -> Iterator[Any]:
    """Values at a dotted path; `name[]` steps into every list element. Missing parts yield nothing."""
    nodes: list[Any] = [record]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        step: list[Any] = []
        for node in nodes:
            value = node.get(key) if isinstance(node, Mapping) else None
            if value is None:
                continue
            if many:
                step.extend(value if isinstance(value, list) else [])
            else:
                step.append(value)
        nodes = step
    yield from nodes


class RuleBook:
    """All rules of one kind, ordered by priority (user rules first among equals)."""

    def __init__(self, kind: str, files: Sequence[RuleFile]) -> None:
        self.kind = kind
        ordered = [rule for document in files for rule in document.rules]
        self.rules = sorted(ordered, key=lambda r: -r.priority)
        self.resource_fields = [field for document in files for field in document.resources]

    def classify(self, record: Mapping[str, Any]) -> Classification:
        """Primary category from the first matching rule by priority; others become tags."""
        matched = [rule for rule in self.rules if rule.matches(self.kind, record)]
        if not matched:
            return Classification(Category.OTHER, "none", ())
        primary = matched[0]
        extra = {str(rule.category) for rule in matched[1:]} | {t for rule in matched for t in rule.tags}
        extra -= {str(primary.category), str(Category.OTHER)}
        return Classification(primary.category, primary.id, tuple(sorted(extra)))


def _parse(text: str, origin: str, kind: str | None) -> RuleFile:
    try:
        document = yaml.load(text, Loader=_SAFE_LOADER)  # a safe loader, C or Python
    except yaml.YAMLError as exc:
        raise BadInputError(f"rules file {origin}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise BadInputError(f"rules file {origin}: expected a mapping with 'kind' and 'rules'")
    if kind is not None:
        document.setdefault("kind", kind)
    try:
        return RuleFile.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = first["loc"]
        where = ""
        if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
            rules = document.get("rules") or []
            entry = rules[location[1]] if location[1] < len(rules) else {}
            name = entry.get("id") if isinstance(entry, dict) else None
            where = f" rule {name or '#' + str(location[1] + 1)!s}:"
        field = ".".join(str(p) for p in location[2:] if not isinstance(p, int)) or ".".join(
            map(str, location)
        )
        raise BadInputError(f"rules file {origin}:{where} {field}: {first['msg']}") from exc


def load_rules(kind: Literal["cloudtrail", "kubernetes"], extra: Sequence[Path] = ()) -> RuleBook:
    """The shipped rules of a kind plus user files of the same kind (others are ignored).

    Raises BadInputError for an unreadable or invalid file, naming the file and rule.
    """
    shipped = resources.files("eksir.hunt").joinpath("rules", f"{kind}.yaml").read_text(encoding="utf-8")
    documents = []
    for path in extra:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(f"rules file {path}: cannot read: {exc.strerror or exc}") from exc
        document = _parse(text, str(path), None)
        if document.kind == kind:
            documents.append(document)
    documents.append(_parse(shipped, f"eksir/hunt/rules/{kind}.yaml", kind))
    return RuleBook(kind, documents)
