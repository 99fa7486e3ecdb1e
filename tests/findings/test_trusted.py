"""The reader builds its models without pydantic validation; prove each one equals the validated model."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from eksir.errors import EksirError
from eksir.findings import classify_actor, read_findings
from eksir.findings.trusted import trusted
from eksir.models.finding import Actor, ActorKind, Container, Finding

from .conftest import FIXTURES, SHARED_GUARDDUTY
from .test_properties import mutated_findings


def assert_same_as_validated(model: BaseModel) -> int:
    """Re-validate `model` field by field (nested models first) and compare every bit of pydantic state."""
    count = 1
    for value in model.__dict__.values():
        items = value if isinstance(value, tuple) else (value,)
        count += sum(assert_same_as_validated(item) for item in items if isinstance(item, BaseModel))
    cls = type(model)
    validated = cls.model_validate(dict(model.__dict__))
    assert validated == model
    assert list(model.__dict__) == list(cls.model_fields)
    assert model.model_fields_set == validated.model_fields_set == set(cls.model_fields)
    assert model.__pydantic_extra__ is None
    assert model.__pydantic_private__ is None
    assert repr(model) == repr(validated)
    assert model.model_dump_json() == validated.model_dump_json()
    for name, field_value in model.__dict__.items():
        assert type(field_value) is type(validated.__dict__[name]), name
    return count


def _all_inputs() -> list[Any]:
    paths = sorted(path for path in FIXTURES.rglob("*") if path.is_file() and path.suffix != ".md")
    if SHARED_GUARDDUTY.is_dir():
        paths += sorted(path for path in SHARED_GUARDDUTY.iterdir() if path.is_file())
    return paths


@pytest.mark.parametrize("path", _all_inputs(), ids=lambda path: path.name)
def test_every_model_read_from_fixtures_and_real_samples_equals_its_validated_form(path: Any) -> None:
    try:
        findings = read_findings(path)
    except EksirError:
        return  # inputs that hold no finding are covered by the reader's own tests
    assert sum(assert_same_as_validated(finding) for finding in findings) >= len(findings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_findings())
def test_every_model_read_from_mutated_findings_equals_its_validated_form(data: bytes) -> None:
    try:
        findings = read_findings(data)
    except EksirError:
        return
    for finding in findings:
        assert isinstance(finding, Finding)
        assert_same_as_validated(finding)


def test_classify_actor_turns_a_str_subclass_into_a_plain_str_as_validation_would() -> None:
    class Name(str):
        pass

    user = {"username": Name("system:node:ip-10-0-0-1"), "groups": [Name("system:nodes")]}
    actor = classify_actor(user, None)
    assert actor.kind is ActorKind.NODE
    assert type(actor.username) is str
    assert type(actor.groups[0]) is str
    assert_same_as_validated(actor)


def test_trusted_builds_an_instance_that_is_frozen_and_equal_to_the_validated_one() -> None:
    values = {
        "name": "shell",
        "image": "alpine",
        "image_prefix": None,
        "privileged": True,
        "allow_privilege_escalation": None,
        "volume_mounts": (),
    }
    container = trusted(Container, dict(values))
    assert container == Container(**values)
    with pytest.raises(Exception, match="frozen"):
        container.name = "other"  # type: ignore[misc]
    assert trusted(Actor, Actor(kind=ActorKind.NODE).model_dump()) == Actor(kind=ActorKind.NODE)


def test_the_shared_fields_set_is_read_only_and_copies_of_the_model_get_their_own() -> None:
    [finding] = read_findings(FIXTURES / "iam-user.wire.json")
    with pytest.raises(TypeError, match="read-only"):
        finding.model_fields_set.add("x")
    with pytest.raises(TypeError, match="read-only"):
        finding.model_fields_set |= {"x"}
    updated = finding.model_copy(update={"title": "changed"})
    assert updated.title == "changed"
    assert finding.title != "changed"
    assert updated.model_fields_set == finding.model_fields_set
    for clone in (copy.copy(finding), copy.deepcopy(finding), pickle.loads(pickle.dumps(finding))):
        assert clone == finding
        assert type(clone.model_fields_set) is set or clone.model_fields_set == finding.model_fields_set
    assert Finding.model_validate(finding.model_dump()) == finding
