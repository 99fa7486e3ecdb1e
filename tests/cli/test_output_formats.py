"""One `-o table|json|yaml` on every command (the hunt adds csv): YAML carries the same document as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli.helpers import FIXTURES, run_eksir


@pytest.mark.parametrize(
    "args",
    [
        ["permissions"],
        ["triage", str(FIXTURES / "iam-user.wire.json"), "--no-case"],
    ],
    ids=["permissions", "triage"],
)
def test_yaml_is_the_json_document(args: list[str]) -> None:
    as_json = run_eksir(*args, "-o", "json")
    as_yaml = run_eksir(*args, "-o", "yaml")
    assert as_json.returncode == 0, as_json.stderr
    assert as_yaml.returncode == 0, as_yaml.stderr
    documents = [d for d in yaml.safe_load_all(as_yaml.stdout) if d is not None]
    try:
        expected = [json.loads(as_json.stdout)]
    except json.JSONDecodeError:  # several findings: JSON Lines, one YAML document each
        expected = [json.loads(line) for line in as_json.stdout.splitlines() if line.strip()]
    assert documents == expected


def test_every_command_with_an_output_option_offers_table_json_and_yaml() -> None:
    from typer.main import get_group

    from eksir.cli.app import build_app
    from eksir.cli.commands import COMMANDS

    group = get_group(build_app())
    missing = []
    for entry in COMMANDS:
        command = group.get_command(None, entry.name)  # type: ignore[arg-type]
        commands = list(getattr(command, "commands", {}).values()) or [command]
        for each in commands:
            for param in each.params:
                if "--output" in getattr(param, "opts", []):
                    choices = {str(value) for value in param.type_descriptor.annotation}
                    if not {"table", "json", "yaml"} <= choices:
                        missing.append(f"{entry.name} {each.name}: {sorted(choices)}")
    assert missing == []


def test_hunt_yaml_carries_the_same_events_as_json(tmp_path: Path) -> None:
    tree = Path(__file__).resolve().parents[1] / "data" / "hunt" / "tree"
    args = [
        "hunt",
        "-p",
        "AKIAATTACKER00000001",
        "--since",
        "2024-08-01",
        "--until",
        "2024-08-05",
        "-s",
        str(tree),
    ]
    as_json = json.loads(run_eksir(*args, "-o", "json").stdout)
    as_yaml = yaml.safe_load(run_eksir(*args, "-o", "yaml").stdout)
    assert [e["event_id"] for e in as_yaml["events"]] == [e["event_id"] for e in as_json["events"]]
