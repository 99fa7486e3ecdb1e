"""Issue #18 ("Conventions"): the README opened with the lab and had no "in a real incident" path. Its first
section is now the real incident (set up once: credentials, `eksir permissions`, the ClusterRole binding,
`eksir doctor`; then the commands in playbook order), and the lab comes after."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_opens_with_the_real_incident_and_the_lab_comes_after() -> None:
    text = README.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert sections[0] == "In a real incident"
    assert sections.index("The lab") > 0
    first = text.split("## In a real incident", 1)[1].split("\n## ", 1)[0]
    for needed in ("AWS_PROFILE", "eksir permissions", "ClusterRole", "bind it", "eksir doctor"):
        assert needed in first
    commands = re.findall(r"^eksir (\w+)", first, flags=re.MULTILINE)
    order = ["triage", "plan", "respond", "status", "hunt", "recover", "prevent", "report", "case"]
    assert [c for c in commands if c in order] == sorted((c for c in commands if c in order), key=order.index)
