"""Every accepted input shape is read, and every bad input is one EksirError with a one-line message."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from eksir.errors import BadInputError, NotAFindingError, NotHandledError
from eksir.findings import read_findings, read_findings_from_path, require_handled
from eksir.findings.shapes import wire_name_pairs
from eksir.models.finding import SourceFormat

from .conftest import FIXTURES

WIRE: dict[str, Any] = json.loads((FIXTURES / "service-account.wire.json").read_text())
EVENT: dict[str, Any] = json.loads((FIXTURES / "service-account.eventbridge.json").read_text())
ASFF: dict[str, Any] = json.loads((FIXTURES / "iam-user.asff.json").read_text())


def _bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_a_json_array_of_findings_gives_every_finding() -> None:
    findings = read_findings(_bytes([WIRE, {**WIRE, "id": "second"}]))
    assert [f.id for f in findings] == [WIRE["id"], "second"]
    assert {f.source_format for f in findings} == {SourceFormat.WIRE}


def test_several_eventbridge_events_as_json_lines_or_array_give_every_finding() -> None:
    lines = (_bytes(EVENT) + b"\n" + _bytes(EVENT)).replace(b"\n", b"\r\n")
    assert len(read_findings(lines)) == 2
    assert len(read_findings(_bytes([EVENT, EVENT, EVENT]))) == 3


def test_sns_with_several_records_gives_one_finding_per_record() -> None:
    record = {"EventSource": "aws:sns", "Sns": {"Message": json.dumps(EVENT)}}
    findings = read_findings(_bytes({"Records": [record, record]}))
    assert [f.source_format for f in findings] == [SourceFormat.SNS, SourceFormat.SNS]


def test_health_events_mixed_with_findings_are_skipped() -> None:
    health = {**EVENT, "detail-type": "GuardDuty Runtime Protection Healthy", "detail": {}}
    findings = read_findings(_bytes(health) + b"\n" + _bytes(EVENT))
    assert len(findings) == 1


def test_securityhub_get_findings_and_imported_events_are_read_as_asff() -> None:
    [listed] = read_findings(_bytes({"Findings": [ASFF]}))
    imported = {"detail-type": "Security Hub Findings - Imported", "detail": {"findings": [ASFF]}}
    [evented] = read_findings(_bytes(imported))
    assert listed.source_format is evented.source_format is SourceFormat.ASFF
    assert listed.model_dump(exclude={"raw"}) == evented.model_dump(exclude={"raw"})


def test_asff_list_indices_in_bracket_and_dotted_forms_are_unflattened() -> None:
    fields = {
        key.replace("/containers/0/", "/containers[0]/").replace("/containers/1/", "/containers/[1]/"): value
        for key, value in ASFF["ProductFields"].items()
    }
    [finding] = read_findings(_bytes({**ASFF, "ProductFields": fields}))
    assert finding.workload is not None
    assert [c.name for c in finding.workload.containers] == ["shell", "sidecar"]


def test_asff_from_another_product_is_not_a_finding() -> None:
    other = {**ASFF, "ProductArn": "arn:aws:securityhub:eu-west-1::product/aws/inspector"}
    with pytest.raises(NotAFindingError, match="inspector"):
        read_findings(_bytes(other))


def test_a_stream_and_stdin_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(read_findings(io.BytesIO(_bytes(WIRE)))) == 1
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(_bytes(WIRE), mtime=0))))
    [finding] = read_findings_from_path("-")
    assert finding.id == WIRE["id"]


def test_gzip_is_detected_by_magic_bytes_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "finding.json"
    path.write_bytes(gzip.compress(_bytes(WIRE), mtime=0))
    assert read_findings_from_path(str(path))[0].id == WIRE["id"]


def test_a_utf8_bom_is_tolerated() -> None:
    assert len(read_findings(b"\xef\xbb\xbf" + _bytes(WIRE))) == 1


def test_unknown_keys_and_explicit_nulls_are_tolerated() -> None:
    data = {**WIRE, "brandNewField": {"x": 1}, "service": None, "title": None}
    [finding] = read_findings(_bytes(data))
    assert finding.raw["brandNewField"] == {"x": 1}
    assert finding.api_call is None
    assert finding.title is None


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", "input is empty"),
        (b"  \n\n ", "input is empty"),
        (b'{"id": "x",\n "type": ', r"invalid JSON at line 2 column \d+"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b"\xff\xfe{\x00}\x00", "UTF-16"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt or truncated gzip"),
        (gzip.compress(b'{"a": 1}', mtime=0)[:-6], "corrupt or truncated gzip"),
        (b'{"id":"a","type":"T/x"}\n{"id": oops}\n', "line 2 column"),
    ],
)
def test_unreadable_input_is_a_bad_input_error_naming_the_problem(data: bytes, pattern: str) -> None:
    with pytest.raises(BadInputError, match=pattern) as caught:
        read_findings(data, name="finding.json")
    assert caught.value.message.startswith("finding.json: ")
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ({"Records": [{"eventSource": "iam.amazonaws.com", "eventName": "CreateUser"}]}, "CloudTrail log"),
        ({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "create"}, "Kubernetes audit event"),
        ({"hello": "world"}, r"keys \[hello\]"),
        ({}, "empty JSON object"),
        (42, "JSON number"),
        ("finding", "JSON string"),
        (None, "JSON null"),
        ({"Findings": []}, "contains no GuardDuty finding"),
        ({"detail-type": "GuardDuty Finding", "detail": "x"}, "no finding in its 'detail'"),
        ({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"}, "aws.ec2"),
    ],
)
def test_json_that_is_no_finding_is_refused_naming_what_it_is(value: Any, pattern: str) -> None:
    with pytest.raises(NotAFindingError, match=pattern):
        read_findings(_bytes(value))


def test_a_finding_without_type_string_or_id_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="no 'type'"):
        read_findings(_bytes({**WIRE, "type": 7}))
    with pytest.raises(BadInputError, match="has no 'id' or 'arn'"):
        read_findings(_bytes({**WIRE, "id": None, "arn": None}))


def test_the_id_falls_back_to_the_last_arn_segment() -> None:
    [finding] = read_findings(_bytes({**WIRE, "id": None}))
    assert finding.id == WIRE["id"]


@pytest.mark.parametrize("make", [lambda p: p / "missing.json", lambda p: p])
def test_a_missing_path_or_a_directory_is_bad_input(tmp_path: Path, make: Any) -> None:
    with pytest.raises(BadInputError, match=str(make(tmp_path))):
        read_findings_from_path(str(make(tmp_path)))


def test_require_handled_refuses_a_handled_type_without_workload() -> None:
    resource = {**WIRE["resource"], "kubernetesDetails": {"kubernetesWorkloadDetails": None}}
    [finding] = read_findings(_bytes({**WIRE, "resource": resource}))
    with pytest.raises(BadInputError, match=f"finding {WIRE['id']} has no Kubernetes workload details"):
        require_handled([finding])


def test_require_handled_refuses_a_handled_type_without_cluster() -> None:
    resource = {**WIRE["resource"], "eksClusterDetails": None}
    [finding] = read_findings(_bytes({**WIRE, "resource": resource}))
    with pytest.raises(BadInputError, match="no EKS cluster details"):
        require_handled([finding])


def test_require_handled_names_the_handled_types_for_another_kubernetes_type() -> None:
    [finding] = read_findings(_bytes({**WIRE, "type": "Discovery:Kubernetes/MaliciousIPCaller"}))
    with pytest.raises(
        NotHandledError, match=r"\(handled: .*PrivilegeEscalation:Kubernetes/Anomalous"
    ) as caught:
        require_handled([finding])
    assert caught.value.exit_code == 5


def test_a_future_privileged_container_variant_is_handled_by_prefix_and_suffix() -> None:
    variant = "PrivilegeEscalation:Kubernetes/SomethingNew!PrivilegedContainer"
    [finding] = read_findings(_bytes({**WIRE, "type": variant}))
    assert finding.handled


def test_eks_resource_type_makes_an_unfamiliar_type_other_kubernetes() -> None:
    [finding] = read_findings(_bytes({**WIRE, "type": "Impact:Runtime/Whatever"}))
    assert finding.family == "other-kubernetes"


def test_irregular_wire_names_come_from_the_botocore_model() -> None:
    pairs = wire_name_pairs()
    assert pairs[("KubernetesApiCallAction", "SourceIps")] == "sourceIPs"
    assert pairs[("NetworkGeoLocation", "Latitude")] == "lat"
    assert pairs[("GeoLocation", "Lat")] == "lat"
    assert pairs[("KubernetesWorkloadDetails", "HostPID")] == "hostPID"
    irregular = {key for key, wire in pairs.items() if wire != key[1][0].lower() + key[1][1:]}
    assert len(irregular) >= 10
