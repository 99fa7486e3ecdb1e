"""Immutable domain models shared by every layer; no I/O here."""

from eksir.models.case import Case, CaseEvent, CaseStatus, EvidenceItem
from eksir.models.finding import (
    Actor,
    ActorKind,
    ApiCall,
    Cluster,
    Container,
    Finding,
    FindingFamily,
    SourceFormat,
    Volume,
    VolumeMount,
    Workload,
)

__all__ = [
    "Actor",
    "ActorKind",
    "ApiCall",
    "Case",
    "CaseEvent",
    "CaseStatus",
    "Cluster",
    "Container",
    "EvidenceItem",
    "Finding",
    "FindingFamily",
    "SourceFormat",
    "Volume",
    "VolumeMount",
    "Workload",
]
