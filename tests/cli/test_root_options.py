"""Root options every command shares, like aws and kubectl: `--version`, and `--debug` for the full trace."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from eksir.cli import app as app_module
from tests.cli.helpers import run_eksir, run_in_process


def test_version_prints_the_installed_version() -> None:
    done = run_eksir("--version")
    assert (done.returncode, done.stdout) == (0, f"eksir {version('eksir')}\n")


def test_an_error_is_one_line_and_debug_adds_the_trace(tmp_path) -> None:
    plain = run_eksir("report", "no-such-case", "--cases-dir", str(tmp_path))
    assert plain.returncode == 10
    assert plain.stderr.startswith("eksir: error: ")
    assert plain.stderr.count("\n") == 1
    debugged = run_eksir("--debug", "report", "no-such-case", "--cases-dir", str(tmp_path))
    assert debugged.returncode == 10
    assert "Traceback (most recent call last)" in debugged.stderr
    assert debugged.stderr.rstrip().endswith(plain.stderr.rstrip())


def test_a_bug_is_reported_in_one_line_with_exit_1_never_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "build_app", broken)
    code, _, err = run_in_process(["--help"], capsys, monkeypatch)
    assert code == 1
    assert err == "eksir: internal error: RuntimeError: boom (run with --debug for the trace)\n"
