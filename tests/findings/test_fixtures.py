"""Every shipped fixture (8 representations x 7 actor kinds) parses to the finding it was generated from."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eksir.findings import read_findings, require_handled
from eksir.models.finding import Finding, FindingFamily

from .conftest import FIXTURES, REPO

INDEX: dict[str, dict[str, Any]] = json.loads((FIXTURES / "index.json").read_text())


def _read_one(name: str) -> Finding:
    [finding] = read_findings(FIXTURES / name)
    return finding


def test_the_index_covers_every_representation_for_every_actor_kind_and_both_types() -> None:
    kinds = {entry["actor_kind"] for entry in INDEX.values()}
    representations = {entry["representation"] for entry in INDEX.values()}
    assert len(kinds) == 7
    assert representations == {"boto3", "console", "wire", "s3-export", "eventbridge", "sns", "asff", "gzip"}
    assert len(INDEX) == 7 * 8
    assert len({entry["type"] for entry in INDEX.values()}) == 2


@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_parses_to_the_expected_actor_workload_and_format(name: str) -> None:
    expected = INDEX[name]
    finding = _read_one(name)
    assert finding.id == expected["id"]
    assert finding.type == expected["type"]
    assert finding.family is FindingFamily.PRIVILEGED_CONTAINER
    assert finding.source_format == expected["source_format"]
    assert finding.actor is not None
    assert finding.actor.kind == expected["actor_kind"]
    assert finding.actor.username == expected["username"]
    assert finding.actor.access_key_id == expected["access_key_id"]
    assert finding.workload is not None
    assert (finding.workload.namespace, finding.workload.name) == (expected["namespace"], expected["pod"])
    assert finding.workload.containers[0].privileged is True
    assert finding.workload.volumes[0].host_path == "/"
    assert finding.cluster is not None
    assert finding.cluster.name == expected["cluster"]
    assert finding.cluster.tags == {"env": "prod", "team": "payments"}
    assert finding.api_call is not None
    assert finding.api_call.source_ips == (expected["source_ip"],)
    assert require_handled([finding]) == [finding]


@pytest.mark.parametrize("kind", sorted({entry["actor_kind"] for entry in INDEX.values()}))
def test_the_same_finding_in_every_representation_normalises_identically(kind: str) -> None:
    names = sorted(name for name, entry in INDEX.items() if entry["actor_kind"] == kind)
    dumps = {name: _read_one(name).model_dump(exclude={"raw", "source_format"}) for name in names}
    reference = dumps[f"{kind}.wire.json"]
    for name, dump in dumps.items():
        assert dump == reference, name


def test_the_canonical_raw_form_is_the_same_wire_json_for_boto3_and_wire_input() -> None:
    wire = _read_one("iam-role.wire.json").raw
    boto3 = _read_one("iam-role.boto3.json").raw
    api_call = boto3["service"]["action"]["kubernetesApiCallAction"]
    assert api_call["sourceIPs"] == wire["service"]["action"]["kubernetesApiCallAction"]["sourceIPs"]
    assert "SourceIps" not in api_call
    assert boto3["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]["hostPID"] is True


def test_the_user_example_is_a_handled_iam_user_finding_from_a_public_ip() -> None:
    [finding] = read_findings(REPO / "examples" / "finding-eventbridge.json")
    assert (
        finding.type
        == "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer"
    )
    assert finding.actor is not None
    assert (finding.actor.kind, finding.actor.username, finding.actor.user_type) == (
        "iam-user",
        "kubernetes-admin",
        "IAMUser",
    )
    assert finding.workload is not None
    assert (finding.workload.namespace, finding.workload.name, finding.workload.host_pid) == (
        "default",
        "debug-tools",
        True,
    )
    assert finding.api_call is not None
    assert finding.api_call.asn is not None
    assert finding.api_call.asn_org
    assert finding.api_call.country_code == "NL"
