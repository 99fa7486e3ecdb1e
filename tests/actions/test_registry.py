"""The action registry is explicit and complete: `ACTION_MODULES` names exactly the modules defining actions.

Why read the source: a module that defines an action but is not listed would never be imported by the engine
or `eksir permissions`, and its steps would show as "not available in this version" (30 of 36 actions were
loaded before this test existed). The comparison of registries runs in fresh interpreters, so what other tests
imported cannot make an incomplete list look complete.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from eksir.actions.registry import ACTION_MODULES, LEGACY_IDS, get_action

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules_defining_actions() -> set[str]:
    """Every module under src/eksir with a class decorated by `register_action`."""
    found: set[str] = set()
    for path in sorted((SRC / "eksir").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(d, ast.Name) and d.id == "register_action")
                or (isinstance(d, ast.Attribute) and d.attr == "register_action")
                for d in node.decorator_list
            ):
                found.add(".".join(path.relative_to(SRC).with_suffix("").parts))
    return found


def _registry_in_a_fresh_interpreter(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return list(json.loads(done.stdout))


def test_the_listed_modules_are_exactly_the_modules_that_define_actions() -> None:
    assert sorted(ACTION_MODULES) == sorted(_modules_defining_actions())


def test_load_all_returns_every_action_the_source_defines() -> None:
    loaded = _registry_in_a_fresh_interpreter(
        "import json; from eksir.actions.registry import load_all; print(json.dumps(sorted(load_all())))"
    )
    every = _registry_in_a_fresh_interpreter(
        "import json, importlib; from eksir.actions import registry\n"
        f"for name in {sorted(_modules_defining_actions())!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(registry._REGISTRY)))"
    )
    assert loaded == every
    # the six that the engine and `eksir permissions` did not see before the list was made explicit
    assert {
        "ec2.share_snapshot",
        "guardduty.archive_finding",
        "guardduty.create_filter",
        "guardduty.finding_feedback",
        "k8s.enforce_pod_security",
        "securityhub.resolve_finding",
    } <= set(loaded)


def test_every_action_id_is_service_dot_verb_and_no_phase_prefix_is_left() -> None:
    """Ids name the API family and the verb (`iam.delete_user`), never the phase (`recovery.*`)."""

    ids = _registry_in_a_fresh_interpreter(
        "import json; from eksir.actions.registry import load_all; print(json.dumps(sorted(load_all())))"
    )
    services = {"asg", "ec2", "eks", "guardduty", "iam", "k8s", "lambda", "logs", "s3", "securityhub", "ssm"}
    assert [i for i in ids if i.split(".", 1)[0] not in services or i.count(".") != 1] == []


def test_a_plan_recorded_with_a_legacy_recovery_id_still_finds_its_action() -> None:

    for old, new in LEGACY_IDS.items():
        assert get_action(old).spec.id == new
