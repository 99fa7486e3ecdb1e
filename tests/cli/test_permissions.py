"""`eksir permissions`: the IAM policy and ClusterRole are derived from every registered action's spec."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from eksir.actions.base import ActionSpec, Phase, RbacRule
from eksir.actions.permissions import NON_ACTION_SPECS, cluster_role, iam_policy, rbac_rules
from eksir.actions.registry import load_all
from eksir.cli.app import build_app

runner = CliRunner()


def _granted_iam(policy: dict[str, object]) -> set[str]:
    statements = policy["Statement"]
    assert isinstance(statements, list)
    return {action for st in statements for action in st["Action"]}


def _granted_rbac(rules: list[dict[str, list[str]]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_json_output_grants_exactly_what_every_action_and_every_call_outside_actions_declare() -> None:
    result = runner.invoke(build_app(), ["permissions", "--output", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    specs = [*NON_ACTION_SPECS, *(cls.spec for cls in load_all().values())]
    assert _granted_iam(doc["iam_policy"]) == {a for s in specs for a in s.iam_actions}
    declared = {
        (g, r, v)
        for s in specs
        for rule in s.rbac
        for g in rule.api_groups
        for r in rule.resources
        for v in rule.verbs
    }
    assert _granted_rbac(doc["cluster_role"]["rules"]) == declared
    assert sorted(doc["actions"]) == sorted(s.id for s in specs)


def test_statements_have_one_service_each_sorted_actions_and_no_action_wildcards() -> None:
    """Scoping itself is tested in test_permissions_scoping.py (parliament, cfn-lint, moto)."""
    policy = iam_policy([*NON_ACTION_SPECS, *(cls.spec for cls in load_all().values())])
    assert policy["Version"] == "2012-10-17"
    sids = [st["Sid"] for st in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow"
        assert st["Action"] == sorted(set(st["Action"]))
        assert {a.split(":")[0] for a in st["Action"]} == {st["Action"][0].split(":")[0]}
        assert not any("*" in a for a in st["Action"])


def test_rules_merge_verbs_per_resource_and_resources_with_equal_verbs() -> None:
    a = ActionSpec("t.a", Phase.CONTAINMENT, "a", rbac=(RbacRule(("",), ("pods",), ("get", "patch")),))
    b = ActionSpec("t.b", Phase.CONTAINMENT, "b", rbac=(RbacRule(("",), ("pods", "nodes"), ("list", "get")),))
    c = ActionSpec("t.c", Phase.CONTAINMENT, "c", rbac=(RbacRule(("apps",), ("replicasets",), ("get",)),))
    assert rbac_rules([c, a, b]) == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
    ]


def test_the_output_is_identical_from_run_to_run() -> None:
    first = runner.invoke(build_app(), ["permissions"]).stdout
    assert first == runner.invoke(build_app(), ["permissions"]).stdout


def test_text_output_is_the_policy_json_then_the_cluster_role_yaml_under_the_chosen_name() -> None:
    result = runner.invoke(build_app(), ["permissions", "--role-name", "ir-team"])
    assert result.exit_code == 0, result.output
    policy_text, role_text = result.stdout.split("\n---\n")
    policy = json.loads("\n".join(line for line in policy_text.splitlines() if not line.startswith("#")))
    role = yaml.safe_load(role_text)
    specs = [*NON_ACTION_SPECS, *(cls.spec for cls in load_all().values())]
    assert policy == iam_policy(specs)
    assert role == cluster_role(specs, "ir-team")
    assert role["kind"] == "ClusterRole"
    assert role["metadata"]["name"] == "ir-team"


def test_an_unknown_output_format_is_a_usage_error() -> None:
    result = runner.invoke(build_app(), ["permissions", "--output", "xml"])
    assert result.exit_code == 2
