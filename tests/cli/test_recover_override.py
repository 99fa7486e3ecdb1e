"""`eksir recover --override-pdb REASON`: offered, and a reason is required (it goes into the case record)."""

from __future__ import annotations

import pytest

from eksir.errors import ExitCode
from tests.cli.helpers import run_in_process


def test_the_option_is_documented_in_the_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_in_process(["recover", "--help"], capsys, monkeypatch)
    assert code == 0
    assert "--override-pdb" in out
    assert "PodDisruptionBudget" in " ".join(out.split())


def test_an_empty_reason_is_a_one_line_usage_error_before_any_case_is_opened(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    args = ["recover", "no-such-case", "--override-pdb", "  ", "--cases-dir", str(tmp_path)]
    code, _, err = run_in_process(args, capsys, monkeypatch)
    assert code == ExitCode.USAGE
    assert err.strip().count("\n") == 0
    assert "--override-pdb needs a reason" in err
