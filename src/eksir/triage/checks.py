"""The individual triage checks over the caller's network origin and the change records.

Each check answers PASS, FAIL, NOT_CONFIGURED (the config has no such section) or NO_DATA (the finding lacks
the field). Only PASS counts in the finding's favour, so missing data or config can never authorise a change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

from eksir.models.finding import Finding
from eksir.triage.config import ChangeRecord, TriageConfig


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_CONFIGURED = "not-configured"
    NO_DATA = "no-data"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    detail: str


def _not_configured(name: str, section: str) -> CheckResult:
    return CheckResult(
        name, CheckStatus.NOT_CONFIGURED, f"not configured (no `{section}` in the triage config)"
    )


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check_source_ip(finding: Finding, config: TriageConfig) -> CheckResult:
    name = "source-ip"
    if config.enterprise_cidrs is None:
        return _not_configured(name, "enterprise_cidrs")
    ips = list(finding.api_call.source_ips) if finding.api_call else []
    if not ips:
        return CheckResult(name, CheckStatus.NO_DATA, "the finding carries no source IP")
    networks = [ipaddress.ip_network(c, strict=False) for c in config.enterprise_cidrs]
    outside = [ip for ip in ips if not ((a := _parse_ip(ip)) and any(a in n for n in networks))]
    if outside:
        return CheckResult(name, CheckStatus.FAIL, f"{', '.join(outside)} outside the enterprise CIDRs")
    return CheckResult(name, CheckStatus.PASS, f"{', '.join(ips)} inside the enterprise CIDRs")


def check_organization(finding: Finding, config: TriageConfig) -> CheckResult:
    name = "asn"
    if config.known_organizations is None:
        return _not_configured(name, "known_organizations")
    call = finding.api_call
    asn = call.asn if call else None
    org = (call.asn_org or call.org) if call else None
    if not asn and not org:
        return CheckResult(name, CheckStatus.NO_DATA, "the finding carries no ASN or organisation")
    for known in config.known_organizations:
        if known.asn and asn and known.asn.removeprefix("AS") == asn.removeprefix("AS"):
            return CheckResult(name, CheckStatus.PASS, f"ASN {asn} ({org or 'unknown org'}) is known")
        if known.name and org and known.name.casefold() == org.casefold():
            return CheckResult(name, CheckStatus.PASS, f"organisation {org} is known")
    return CheckResult(
        name, CheckStatus.FAIL, f"ASN {asn or '?'} ({org or 'unknown org'}) is not a known organisation"
    )


def check_country(finding: Finding, config: TriageConfig) -> CheckResult:
    name = "country"
    if config.allowed_countries is None:
        return _not_configured(name, "allowed_countries")
    code = finding.api_call.country_code if finding.api_call else None
    if not code:
        return CheckResult(
            name, CheckStatus.NO_DATA, "the finding carries no country (in-VPC or unknown caller)"
        )
    allowed = {c.upper() for c in config.allowed_countries}
    if code.upper() in allowed:
        return CheckResult(name, CheckStatus.PASS, f"country {code} is allowed")
    return CheckResult(name, CheckStatus.FAIL, f"country {code} is not in the allowed list")


def check_user_agent(finding: Finding, config: TriageConfig) -> CheckResult:
    name = "user-agent"
    if config.expected_user_agents is None:
        return _not_configured(name, "expected_user_agents")
    agent = finding.api_call.user_agent if finding.api_call else None
    if not agent:
        return CheckResult(name, CheckStatus.NO_DATA, "the finding carries no user agent")
    for pattern in config.expected_user_agents:
        if fnmatchcase(agent, pattern) or pattern in agent:
            return CheckResult(name, CheckStatus.PASS, f"user agent matches expected {pattern!r}")
    return CheckResult(name, CheckStatus.FAIL, f"user agent {agent!r} is not one of the expected tools")


def actor_identifiers(finding: Finding) -> set[str]:
    """Every string a change record may use to name the actor."""
    actor = finding.actor
    if actor is None:
        return set()
    values = {actor.username, actor.access_key_id, actor.principal_id, actor.user_name, actor.session_name}
    return {v for v in values if v}


def change_record_matches(record: ChangeRecord, finding: Finding, at: datetime | None) -> list[str]:
    """Return why the record does NOT cover the finding (empty list = it covers it)."""
    gaps: list[str] = []
    if not actor_identifiers(finding) & set(record.principals):
        gaps.append("principal differs")
    namespace = finding.workload.namespace if finding.workload else None
    if not any(fnmatchcase(namespace or "", pattern) for pattern in record.namespaces):
        gaps.append(f"namespace {namespace} not covered")
    images = [c.image or "" for c in finding.workload.containers] if finding.workload else []
    if record.image_prefixes and not all(any(i.startswith(p) for p in record.image_prefixes) for i in images):
        gaps.append("image not under an approved prefix")
    if at is None or not record.window_start <= at <= record.window_end:
        gaps.append("outside the approved time window")
    return gaps


def check_change_records(finding: Finding, config: TriageConfig) -> tuple[CheckResult, ChangeRecord | None]:
    name = "change-record"
    if config.change_records is None:
        return _not_configured(name, "change_records"), None
    at = finding.event_first_seen or finding.created_at
    closest: tuple[int, str] | None = None
    for record in config.change_records:
        gaps = change_record_matches(record, finding, at)
        if not gaps:
            return CheckResult(name, CheckStatus.PASS, f"covered by approved change {record.id}"), record
        if closest is None or len(gaps) < closest[0]:
            closest = (len(gaps), f"closest change {record.id}: {', '.join(gaps)}")
    detail = closest[1] if closest else "no change records listed"
    return CheckResult(name, CheckStatus.FAIL, f"no approved change covers it ({detail})"), None
