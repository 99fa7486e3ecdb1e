"""One case per incident, end to end through the CLI: a runtime finding opens the case, the attack sequence
naming its pod joins it, both triages are kept, the case verifies, and the report's timeline shows the
sequence's signals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.new_findings import HERE


def _eksir(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eksir", *args], capture_output=True, text=True, check=False)


def test_a_joined_sequence_keeps_both_triages_and_puts_its_signals_on_the_timeline(tmp_path: Path) -> None:
    cases = str(tmp_path / "cases")
    first = _eksir(
        "triage", str(HERE / "runtime-reverse-shell.wire.json"), "--cases-dir", cases, "-o", "json"
    )
    assert first.returncode == 0, first.stderr
    second = _eksir("triage", str(HERE / "attack-sequence-eks.wire.json"), "--cases-dir", cases, "-o", "json")
    assert second.returncode == 0, second.stderr
    case_id = json.loads(first.stdout)["case"]["id"]
    assert json.loads(second.stdout)["case"] == {
        "id": case_id,
        "path": f"{cases}/{case_id}",
        "created": False,
    }
    case = Path(cases) / case_id
    primary = json.loads((case / "triage.json").read_text())
    assert primary["finding"]["type"] == "Execution:Runtime/ReverseShell"
    [joined] = list(case.glob("triage-joined-*.json"))
    assert json.loads(joined.read_text())["sequence"]["uid"] == "6a1f0c9e-2d3b-4c5d-8e7f-90a1b2c3d4e5"
    assert _eksir("case", "verify", str(case)).returncode == 0
    report = _eksir("report", str(case), "--format", "json")
    assert report.returncode == 0, report.stderr
    timeline = json.loads((case / "report.json").read_text())["timeline"]
    signals = [e for e in timeline if e["title"].startswith("Sequence signal")]
    assert [e["title"] for e in signals] == [
        "Sequence signal (FINDING): PrivilegeEscalation:Kubernetes/"
        "AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        "Sequence signal (EKS_AUDIT_LOGS): create pods/exec",
        "Sequence signal (FINDING): Execution:Runtime/ReverseShell",
        "Sequence signal (CLOUD_TRAIL): secretsmanager:ListSecrets",
    ]
    assert all(e["lane"] == "attacker" for e in signals)
    assert any(e["title"].startswith("Another finding joined the case") for e in timeline)
