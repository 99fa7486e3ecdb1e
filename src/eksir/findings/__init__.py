"""Read GuardDuty findings in every representation AWS emits and normalise them into `Finding`.

Public API: `read_findings`, `iter_findings`, `read_findings_from_path`, `require_handled`, `family_of`,
`classify_actor`, `parse_timestamp`. Nothing is loaded at import time; botocore's model is loaded on the
first read.
"""

from eksir.findings.actor import classify_actor
from eksir.findings.family import family_of, require_handled
from eksir.findings.reader import iter_findings, read_findings, read_findings_from_path
from eksir.findings.timestamps import parse_timestamp

__all__ = [
    "classify_actor",
    "family_of",
    "iter_findings",
    "parse_timestamp",
    "read_findings",
    "read_findings_from_path",
    "require_handled",
]
