"""Case bundles on disk: atomic writes, a hash-chained event log, hashed evidence, verification."""

from eksir.store.case_store import CaseHandle, CaseStore, case_id_for
from eksir.store.verify import VerificationReport, verify_case

__all__ = ["CaseHandle", "CaseStore", "VerificationReport", "case_id_for", "verify_case"]
