"""Pod Security Admission labels for a namespace, and a server-side dry run of them before anything changes.

Why a dry run first: enforcing `baseline` on a namespace never evicts running pods, but every pod that
violates it can no longer be re-created (a restart of its ReplicaSet fails). The API server answers a
dry-run label update with one warning per group of violating pods (`existing pods in namespace "x" violate
...`, then `<pod>[ (and N other pods)]: <violations>`), so the responder sees the blast radius before
approving.

The warnings travel as HTTP `Warning: 299 - "<text>"` headers; the kubernetes client drops them unless the
call is made `_with_http_info`, which returns the raw headers (an urllib3 HTTPHeaderDict, one value per
header).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eksir.clients.k8s import k8s_call
from eksir.clients.k8s_api import core

PSA_PREFIX = "pod-security.kubernetes.io/"
ENFORCE = PSA_PREFIX + "enforce"
_WARNING = re.compile(r'\d{3} \S+ "((?:[^"\\]|\\.)*)"')
_OTHER_PODS = re.compile(r"\s*\(and \d+ other pods?\)\s*$")
_EXISTING = "existing pods in namespace"


class PsaLevel(StrEnum):
    BASELINE = "baseline"
    RESTRICTED = "restricted"


def psa_labels(level: PsaLevel) -> dict[str, str]:
    """enforce + warn + audit at `level`, all pinned to `latest` (follows the cluster version)."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "warn", "audit"):
        labels[f"{PSA_PREFIX}{mode}"] = level.value
        labels[f"{PSA_PREFIX}{mode}-version"] = "latest"
    return labels


def parse_warnings(values: list[str]) -> list[str]:
    """Warning header values (`299 - "text"`, possibly several per value) -> their unescaped texts."""
    texts: list[str] = []
    for value in values:
        matches = _WARNING.findall(value)
        if not matches and value.strip():
            texts.append(value.strip())
        texts += [m.replace('\\"', '"').replace("\\\\", "\\") for m in matches]
    return texts


def header_values(headers: Any, name: str) -> list[str]:
    """Every value of header `name` (urllib3 HTTPHeaderDict keeps repeated headers separately)."""
    if headers is None:
        return []
    if hasattr(headers, "getlist"):
        return [str(v) for v in headers.getlist(name)]
    value = headers.get(name) if hasattr(headers, "get") else None
    return [str(value)] if value else []


def violating_pods(warnings: list[str]) -> list[dict[str, str]]:
    """`[{pod, violations}]` from the dry-run warnings; a grouped line names its first pod and the count."""
    pods = []
    for text in warnings:
        if text.startswith(_EXISTING) or ":" not in text:
            continue
        name, _, violations = text.partition(":")
        group = _OTHER_PODS.search(name)
        pods.append(
            {
                "pod": _OTHER_PODS.sub("", name).strip(),
                "violations": violations.strip(),
                "group": group.group(0).strip(" ()") if group else "",
            }
        )
    return pods


@dataclass(frozen=True)
class PsaCheck:
    namespace: str
    level: PsaLevel
    previous_labels: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    violating_pods: list[dict[str, str]] = field(default_factory=list)

    @property
    def already_enforced(self) -> bool:
        wanted = psa_labels(self.level)
        return all(self.previous_labels.get(k) == v for k, v in wanted.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "level": self.level.value,
            "labels": psa_labels(self.level),
            "previous_labels": self.previous_labels,
            "previous_psa_labels": {
                k: v for k, v in self.previous_labels.items() if k.startswith(PSA_PREFIX)
            },
            "dry_run_warnings": self.warnings,
            "violating_pods": [
                p["pod"] + (f" ({p['group']})" if p["group"] else "") for p in self.violating_pods
            ],
            "violations": self.violating_pods,
        }


def label_patch(labels: dict[str, str | None]) -> dict[str, Any]:
    """A merge patch on the namespace's labels (None deletes a label)."""
    return {"metadata": {"labels": labels}}


def dry_run_psa(api: Any, namespace: str, level: PsaLevel) -> PsaCheck:
    """Read the namespace's labels and dry-run the PSA labels server-side; raises eksir errors."""
    namespaces = core(api)
    with k8s_call(f"read namespace {namespace}"):
        current = namespaces.read_namespace(namespace)
    previous = dict(current.metadata.labels or {})
    with k8s_call(f"dry-run Pod Security labels on namespace {namespace}"):
        _data, _status, headers = namespaces.patch_namespace_with_http_info(
            namespace, label_patch(dict(psa_labels(level))), dry_run="All"
        )
    warnings = parse_warnings(header_values(headers, "Warning"))
    return PsaCheck(namespace, level, previous, warnings, violating_pods(warnings))
