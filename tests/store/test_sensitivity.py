"""Which evidence is marked sensitive: node captures, and Secrets or Lambdas described before deletion."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from eksir.models.case import EvidenceItem
from eksir.store.sensitivity import LAMBDA_CONFIG, NODE_CAPTURE, SECRET_OBJECT, sensitive_reason


def _item(tmp_path: Path, body: dict[str, object], source: str, description: str = "") -> EvidenceItem:
    (tmp_path / "evidence").mkdir(exist_ok=True)
    (tmp_path / "evidence" / "001-x.json").write_bytes(orjson.dumps(body))
    return EvidenceItem(
        number=1,
        name="x.json",
        path="evidence/001-x.json",
        sha256="0" * 64,
        size=1,
        collected_at=datetime(2026, 1, 1, tzinfo=UTC),
        collected_by="t@h",
        source=source,
        description=description,
    )


def _described(resource: str) -> dict[str, object]:
    return {"action_id": "k8s.delete_object", "params": {"ref": {"resource": resource}}}


@pytest.mark.parametrize("source", ["k8s.delete_object describe", "recovery.delete_k8s_object describe"])
def test_a_secret_described_before_deletion_is_sensitive_and_a_configmap_is_not(
    tmp_path: Path, source: str
) -> None:
    assert sensitive_reason(_item(tmp_path, _described("secrets"), source), tmp_path) == SECRET_OBJECT
    assert sensitive_reason(_item(tmp_path, _described("configmaps"), source), tmp_path) is None


@pytest.mark.parametrize(
    "source", ["lambda.delete_function describe", "recovery.delete_lambda_function describe"]
)
def test_a_lambda_function_described_before_deletion_is_sensitive(tmp_path: Path, source: str) -> None:
    """The current id and the `recovery.*` id that cases written before the rename carry."""
    item = _item(tmp_path, {}, source)
    assert sensitive_reason(item, tmp_path) == LAMBDA_CONFIG


def test_a_node_capture_is_sensitive_and_the_finding_as_received_is_not(tmp_path: Path) -> None:
    capture = _item(tmp_path, {}, "s3://b/k", "volatile evidence from the node, as uploaded to s3://b/k")
    assert sensitive_reason(capture, tmp_path) == NODE_CAPTURE
    finding = _item(tmp_path, {}, "finding.json", "The GuardDuty finding exactly as received")
    assert sensitive_reason(finding, tmp_path) is None
