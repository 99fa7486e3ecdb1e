"""The HTML report renders in a real browser (headless Chromium): no external resource, no console error;
printed to PDF, page 1 is the executive's and page 2 legal's; no table cell overflows at desktop or A4 width.

Skips with the reason when Chromium is not installed (`scripts/install-test-deps.sh` installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest

from eksir.report import generate_report
from tests.report.case_builder import BACKDOOR_USER, INCIDENT_HUNT, add_recovery, add_step, build_case

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


# --- the report for two readers, printed: page 1 for the executive, page 2 for legal -----------------------

_LAYOUT_CHECK = """<script>
const overflow = [];
for (const el of document.querySelectorAll("td, th")) {
  if (el.scrollWidth > el.clientWidth + 1) overflow.push(el.tagName + ": " + el.textContent.slice(0, 80));
}
const page = document.documentElement.clientWidth;
for (const t of document.querySelectorAll("table")) {
  if (t.getBoundingClientRect().right > page + 1) overflow.push("table wider than the page: " + t.id);
}
const wrapped = [];
for (const el of document.querySelectorAll(".status")) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  if (tops.size > 1) wrapped.push(el.textContent);
}
document.body.setAttribute("data-overflow", JSON.stringify(overflow));
document.body.setAttribute("data-wrapped", JSON.stringify(wrapped));
document.body.setAttribute("data-statuses", String(document.querySelectorAll(".status").length));
</script>"""


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab scenario's AWS attack in the hunt, recovery that removed the backdoor user, and steps whose
    long status words and details would wrap or overflow in a careless layout."""
    tmp = tmp_path_factory.mktemp("incident")
    handle = build_case(tmp / "cases", hunt_doc=INCIDENT_HUNT)
    add_recovery(handle)
    for status in ("unavailable-in-lab", "rollback-failed", "not-effective"):
        add_step(handle, f"step-{status}", "k8s.isolate_pod", "containment", status)
        handle.append(f"step.{status}", {"step_id": f"step-{status}", "detail": "x" * 300})
    generate_report(handle, ["html"], now=datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    return handle.path / "report.html"


@pytest.fixture(scope="module")
def pdf_pages(incident: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext absent: run scripts/install-test-deps.sh (poppler-utils)")
    tmp = tmp_path_factory.mktemp("pdf")
    pdf = tmp / "report.pdf"
    result = _chromium(tmp, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", incident.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(pdf, ARTIFACTS / "report.pdf")  # for a person to look at, beside report.png
    # -raw: each cell's text in reading order, hyphens kept (the default drops a hyphen at a line end)
    pdftotext = ["pdftotext", "-raw", str(pdf), "-"]
    text = subprocess.run(pdftotext, capture_output=True, text=True, check=True).stdout
    return text.split("\f")


def test_printed_page_one_names_the_data_read_the_backdoor_user_and_the_deleted_trail(pdf_pages):
    page_one = pdf_pages[0]
    flat = " ".join(re.sub(r"-\n", "-", page_one).split())  # a value wrapped in its cell, read as one
    assert page_one.startswith("PAGE 1: FOR THE EXECUTIVE")
    assert "customers-2024-q3.csv" in flat
    assert "iam CreateUser" in flat
    assert BACKDOOR_USER in flat
    assert "removed by step delete-user" in flat
    assert "cloudtrail DeleteTrail" in flat
    for heading in ("Impact", "Containment now", "Open risks and worklist", "Who approved what"):
        assert f"\n{heading}\n" in page_one


def test_printed_page_two_is_for_legal_with_the_chain_head_and_evidence_hashes(pdf_pages, incident):
    page_two = pdf_pages[1]
    assert page_two.startswith("PAGE 2: FOR LEGAL")
    assert "Chain of custody" in page_two
    assert "not anchored" in page_two
    assert "Evidence manifest" in page_two
    assert "\nTimeline (UTC)" not in page_two
    assert "Appendix: step states (raw JSON)" in "".join(pdf_pages[2:])


def _layout(tmp_path: Path, page: Path, width: int) -> dict[str, list[str] | int]:
    """Render the page with a layout probe (the report itself runs no script: its CSP forbids it)."""
    probe = tmp_path / f"probe-{width}.html"
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    probe.write_text(html.replace("</body>", _LAYOUT_CHECK + "</body>"))
    result = _chromium(tmp_path, f"--window-size={width},2000", "--dump-dom", probe.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body ([^>]*)>", result.stdout)
    assert body, result.stdout[:500]
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    return {k: json.loads(unescape(v)) for k, v in attrs.items()}


@pytest.mark.parametrize("width", [1280, 720])
def test_no_table_cell_overflows_and_no_status_word_wraps(incident, tmp_path, width):
    layout = _layout(tmp_path, incident, width)
    assert layout["statuses"] >= 8
    assert layout["overflow"] == []
    assert layout["wrapped"] == []
