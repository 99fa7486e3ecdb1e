"""Whatever the input, the reader returns findings or raises an EksirError: nothing else escapes."""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eksir.errors import EksirError
from eksir.findings import read_findings, require_handled
from eksir.models.finding import Finding

from .conftest import FIXTURES

SEEDS = [
    json.loads((FIXTURES / name).read_text())
    for name in (
        "iam-role.wire.json",
        "node.boto3.json",
        "anonymous.sns.json",
        "oidc-user.asff.json",
        "new-types/runtime-release-agent.wire.json",
        "new-types/runtime-reverse-shell.boto3.json",
        "new-types/node-debugger-sysadmin.wire.json",
        "new-types/attack-sequence-eks.wire.json",
        "new-types/attack-sequence-eks.asff.json",
    )
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
REPLACEMENTS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=8)
    | st.just([])
    | st.just({})
)
REPLACEMENTS |= st.just("true") | st.just([None, 3]) | st.just({"Type": "x"})


def _one_line(error: EksirError) -> EksirError:
    assert error.message
    assert "\n" not in error.message
    return error


def _outcome(data: bytes) -> list[Finding] | EksirError:
    try:
        findings = read_findings(data)
    except EksirError as error:
        return _one_line(error)
    assert all(isinstance(finding, Finding) for finding in findings)
    try:
        require_handled(findings)
    except EksirError as error:
        return _one_line(error)
    return findings


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_findings_or_an_eksir_error(data: bytes) -> None:
    _outcome(data)
    _outcome(gzip.compress(data, mtime=0))


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_arbitrary_json_values_give_findings_or_an_eksir_error(value: Any) -> None:
    _outcome(orjson.dumps(value))
    _outcome(orjson.dumps({"Findings": [value]}))
    _outcome(orjson.dumps({"detail-type": "GuardDuty Finding", "detail": value}))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_findings(draw: st.DrawFn) -> bytes:
    """A valid fixture with a few keys dropped, nulled or given a value of another type."""
    finding = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    paths = _paths(finding)
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(paths))
        parent: Any = finding
        try:
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict) is not isinstance(path[-1], str):
                continue  # an earlier mutation turned a list into an object (or back): the path is stale
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(draw(REPLACEMENTS))
        except (KeyError, IndexError, TypeError):
            continue
    return orjson.dumps(finding)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_findings())
def test_mutated_valid_findings_give_findings_or_an_eksir_error(data: bytes) -> None:
    _outcome(data)
