"""The HTML report renders in a real browser (headless Chromium): no external resource, no console error.

Skips with the reason when Chromium is not installed (`scripts/install-test-deps.sh` installs it).
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eksir.report import generate_report
from tests.report.case_builder import build_case

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium absent: run scripts/install-test-deps.sh"
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("html")
    handle = build_case(tmp / "cases")
    generate_report(handle, ["html"], now=datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    return (
        handle.load().id,
        handle.path / "report.html",
        _chromium(tmp, "--dump-dom", (handle.path / "report.html").as_uri()),
    )


def test_the_rendered_dom_holds_the_case_id_and_the_timeline_chart(rendered):
    case_id, _, result = rendered
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'<span class="mono" id="case-id">{case_id}</span>' in result.stdout
    assert re.search(r'<svg id="timeline-chart"[^>]*>', result.stdout)
    assert result.stdout.count('<circle class="tl-') >= 5


def test_the_page_logs_no_console_error_and_loads_nothing_external(rendered):
    _, _, result = rendered
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
    assert console == []
    assert "ERR_" not in result.stderr


def test_a_screenshot_is_kept_under_test_artifacts(rendered, tmp_path):
    _, page, _ = rendered
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
