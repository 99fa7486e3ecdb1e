"""Issue 12 item 6: `--approve all` runs destructive, partly irreversible steps without asking, so every verb
that runs steps refuses it without `--yes`: a usage error (exit 2) before anything is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from eksir.errors import ExitCode
from tests.cli.helpers import run_in_process
from tests.report.case_builder import build_case


@pytest.mark.parametrize("verb", ["recover", "resume"])
def test_approve_all_without_yes_is_a_usage_error_that_leaves_the_case_untouched(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = build_case(tmp_path)
    before = (handle.path / "events.jsonl").read_bytes()
    code, out, err = run_in_process(
        [verb, str(handle.path), "--approve", "all", "--endpoint-url", "http://127.0.0.1:9"],
        capsys,
        monkeypatch,
    )
    assert code == ExitCode.USAGE
    assert (
        err == "eksir: error: --approve all applies destructive steps without asking: confirm it with --yes\n"
    )
    assert out == ""
    assert (handle.path / "events.jsonl").read_bytes() == before
