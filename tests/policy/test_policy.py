"""The response policy: validation errors name the line, rules match in order, `auto` never reaches a
destructive step unless the rule says so, and the CLI's `policy check` / `policy explain` say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eksir.errors import BadInputError
from eksir.findings import read_findings
from eksir.policy import decide, facts_of, parse_policy
from eksir.policy.model import DEFAULT_POLICY
from tests.cli.helpers import FIXTURES, run_eksir

GOOD = """\
version: 1
organisational_units:
  ou-prod: ["123456789012"]
default:
  name: default
rules:
  - name: payments in prod
    match:
      ous: [ou-prod]
      namespaces: [payments]
      severity: {min: 7}
    auto: [non-destructive, k8s.isolate_pod]
    notify: ["#payments-oncall"]
  - name: anything from an iam user
    match:
      actor_kinds: [iam-user]
      verdicts: [suspicious, unauthorized]
    auto: [non-destructive, iam.deactivate_access_key]
    auto_destructive: true
"""


def _finding(name: str = "iam-user.eventbridge.json"):  # type: ignore[no-untyped-def]
    return read_findings(FIXTURES / name)[0]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("rules:\n  - name: a\n    match:\n      namespacez: [x]\n", 4, "Extra inputs are not permitted"),
        ("rules:\n  - name: a\n    match:\n      severity: {min: 9, max: 2}\n", 4, "above max"),
        ("version: 1\nrules:\n  - match: {}\n", 3, "name: Field required"),
        ("version: 2\n", 1, "version"),
        ("rules: [\n", 2, "not valid YAML"),
        ("rules:\n  - name: a\n    match:\n      verdicts: [evil]\n", 4, "verdicts.0"),
    ],
)
def test_a_bad_policy_is_refused_with_the_line_of_the_problem(text: str, line: int, words: str) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_policy(text, "p.yaml")
    assert caught.value.message.startswith(f"p.yaml:{line}: "), caught.value.message
    assert words in caught.value.message


def test_an_empty_file_is_the_default_policy() -> None:
    assert parse_policy("", "p.yaml") == DEFAULT_POLICY


def test_the_first_matching_rule_decides_and_the_default_runs_only_non_destructive_steps() -> None:
    policy = parse_policy(GOOD, "p.yaml")
    finding = _finding()
    facts = facts_of(finding, policy, "suspicious")
    decision = decide(policy, facts)
    assert facts.actor_kind == "iam-user"
    assert decision.rule.name == "anything from an iam user"
    assert decision.runs_automatically("s1", "iam.deactivate_access_key", needs_approval=True)
    assert not decision.runs_automatically("s2", "k8s.isolate_pod", needs_approval=True)
    assert decision.runs_automatically("s3", "k8s.label_node", needs_approval=False)
    default = decide(DEFAULT_POLICY, facts)
    assert not default.matched
    assert default.runs_automatically("s3", "k8s.label_node", needs_approval=False)
    assert not default.runs_automatically("s1", "iam.deactivate_access_key", needs_approval=True)


def test_a_destructive_action_named_in_auto_still_waits_without_auto_destructive() -> None:
    text = "rules:\n  - name: isolate\n    auto: [non-destructive, k8s.isolate_pod]\n"
    policy = parse_policy(text, "p.yaml")
    decision = decide(policy, facts_of(_finding(), policy, "suspicious"))
    assert decision.rule.name == "isolate"
    assert not decision.runs_automatically("x", "k8s.isolate_pod", needs_approval=True)
    loosened = parse_policy(text + "    auto_destructive: true\n", "p.yaml")
    assert decide(loosened, facts_of(_finding(), loosened, None)).runs_automatically(
        "x", "k8s.isolate_pod", needs_approval=True
    )


def test_policy_check_prints_file_line_message_and_exits_3(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules:\n  - name: a\n    autox: [1]\n")
    done = run_eksir("policy", "check", str(bad))
    assert done.returncode == 3
    assert done.stderr.strip() == f"{bad}:3: rules.0.autox: Extra inputs are not permitted"
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    ok = run_eksir("policy", "check", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "2 rule(s)" in ok.stdout


def test_policy_explain_shows_the_rule_and_which_actions_wait(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    done = run_eksir(
        "policy", "explain", str(FIXTURES / "iam-user.eventbridge.json"), "--policy", str(good), "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    runs = {row["action"]: row["runs"] for row in doc["actions"]}
    assert doc["decision"]["rule"] in {"anything from an iam user", "default"}
    assert runs["k8s.label_node"] == "auto"
    assert runs["k8s.isolate_pod"] == "waits"
    default = json.loads(
        run_eksir("policy", "explain", str(FIXTURES / "iam-user.eventbridge.json"), "-o", "json").stdout
    )
    assert default["decision"]["matched"] is False
    assert {r["runs"] for r in default["actions"] if r["destructive"]} == {"waits"}
