"""The triage configuration file (YAML), validated at load so a typo fails loudly, not silently passes.

Every section is optional. A section that is absent means the check reports "not configured": an empty
config can never make a finding look authorised. See `examples/triage-config.yaml` for a documented example.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from eksir.errors import BadInputError


def _check_network(value: str) -> str:
    ipaddress.ip_network(value, strict=False)
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps in change records need a time zone (for example 2026-11-23T02:00:00Z)")
    return value


Cidr = Annotated[str, AfterValidator(_check_network)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KnownOrganization(_Strict):
    asn: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _needs_one(self) -> KnownOrganization:
        if not self.asn and not self.name:
            raise ValueError("a known organisation needs an asn or a name")
        return self


class ChangeRecord(_Strict):
    """An approved change (from the change-management system) that may explain a privileged pod."""

    id: str
    principals: list[str] = Field(min_length=1, description="Kubernetes usernames or AWS ARNs/access key ids")
    namespaces: list[str] = Field(default_factory=lambda: ["*"])
    image_prefixes: list[str] = Field(default_factory=list)
    window_start: AwareDatetime
    window_end: AwareDatetime
    description: str = ""
    approver: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ChangeRecord:
        if self.window_end <= self.window_start:
            raise ValueError(f"change {self.id}: window_end must be after window_start")
        return self


class NodeDebugPolicy(_Strict):
    """Who may open `kubectl debug node` sessions without a change record (triage/node_debugger.py)."""

    admin_groups: list[str] = Field(
        default_factory=list, description="Kubernetes groups whose members may debug nodes (e.g. sre-admins)"
    )
    window_hours: int = Field(
        default=8, ge=1, le=72, description="how long the suppression filter for such a session lasts"
    )


class TriageConfig(_Strict):
    enterprise_cidrs: list[Cidr] | None = None
    known_organizations: list[KnownOrganization] | None = None
    allowed_countries: list[str] | None = None
    expected_user_agents: list[str] | None = Field(
        default=None, description="substrings or fnmatch patterns of user agents your tooling uses"
    )
    change_records: list[ChangeRecord] | None = None
    node_debug: NodeDebugPolicy | None = None


def load_triage_config(path: Path | None) -> TriageConfig:
    """Load and validate the YAML file; None gives an empty config (every check 'not configured')."""
    if path is None:
        return TriageConfig()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"cannot read triage config {path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInputError(f"triage config {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if document is None:
        return TriageConfig()
    if not isinstance(document, dict):
        raise BadInputError(f"triage config {path} must be a mapping at the top level")
    try:
        return TriageConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadInputError(f"triage config {path}: {where}: {first['msg']}") from exc
