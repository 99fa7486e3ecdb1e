"""The lab builder: Go detection, cache reuse, pin hashing and build-failure reporting."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from eksir.errors import LabError
from eksir.lab import build, pins
from eksir.lab.build import LabBinaries, build_module, ensure_binaries, find_go, parse_go_version
from tests.cli.helpers import run_in_process


def _path_without_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_go_is_a_lab_error_that_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _path_without_go(tmp_path, monkeypatch)
    with pytest.raises(LabError) as caught:
        ensure_binaries(cache_dir=tmp_path / "cache")
    assert "`go` is not on PATH" in caught.value.message
    assert "install Go >= 1.24 from https://go.dev/dl and put it on PATH" in caught.value.message


def test_a_go_older_than_the_pinned_modules_need_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = _path_without_go(tmp_path, monkeypatch)
    old_go = bin_dir / "go"
    old_go.write_text("#!/bin/sh\necho go1.22.5\n")
    old_go.chmod(0o755)
    with pytest.raises(LabError, match=r"go1\.22\.5, too old for the lab: install Go >= 1\.24"):
        find_go()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("go1.26.8\n", (1, 26)),
        ("go1.24.0", (1, 24)),
        ("go1.9", (1, 9)),
        ("devel go1.27-abc", None),
        ("", None),
    ],
)
def test_go_versions_are_parsed_to_major_and_minor(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_go_version(text) == expected


def test_the_minimum_go_version_comes_from_the_shipped_go_mod_files() -> None:
    assert pins.min_go_version() == (1, 24)


def test_the_shipped_kube_apiserver_module_maps_every_staging_module_to_the_published_version() -> None:
    go_mod = pins.source_dir("kube-apiserver").joinpath("go.mod").read_text()
    assert "k8s.io/kubernetes v1.34.4" in go_mod
    for staging in ("k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/pod-security-admission"):
        assert f"{staging} => {staging} v0.34.4" in go_mod


def test_the_pin_hash_changes_when_a_go_module_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = pins.pin_hash()
    for program in pins.PROGRAMS:
        target = tmp_path / program.name
        target.mkdir()
        for name in pins.GO_SOURCE_FILES:
            (target / name).write_bytes(pins.source_dir(program.name).joinpath(name).read_bytes())
    monkeypatch.setattr(pins, "source_dir", lambda name: tmp_path / name)
    assert pins.pin_hash() == before
    with (tmp_path / "etcd" / "go.sum").open("a") as handle:
        handle.write("example.com/extra v1.0.0 h1:AAAA=\n")
    assert pins.pin_hash() != before


def test_the_cache_folder_follows_eksir_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKSIR_CACHE_DIR", str(tmp_path))
    assert build.binaries_dir() == tmp_path / "bin" / pins.pin_hash()


@pytest.mark.lab
def test_a_failed_build_reports_the_compiler_error_and_the_log_path(tmp_path: Path) -> None:
    go = find_go()
    src = tmp_path / "broken"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/broken\n\ngo 1.24\n")
    (src / "main.go").write_text("package main\n\nfunc main() { undefinedCall() }\n")
    messages: list[str] = []
    with pytest.raises(LabError) as caught:
        build_module(go, src, tmp_path / "out" / "broken", ldflags=(), progress=messages.append)
    log = tmp_path / "out" / "build-broken.log"
    assert "building broken failed" in caught.value.message
    assert "undefined: undefinedCall" in caught.value.message
    assert str(log) in caught.value.message
    assert log.is_file()
    assert not (tmp_path / "out" / "broken").exists()
    assert messages[0].startswith("building broken")


@pytest.fixture(scope="module")
def built(lab_binaries: LabBinaries) -> LabBinaries:
    return lab_binaries


@pytest.mark.lab
def test_the_built_binaries_report_the_pinned_versions(built: LabBinaries) -> None:
    kas = subprocess.run([built.kube_apiserver, "--version"], capture_output=True, text=True, check=True)
    etcd = subprocess.run([built.etcd, "--version"], capture_output=True, text=True, check=True)
    assert kas.stdout.strip() == f"Kubernetes {pins.KUBERNETES_VERSION}"
    assert f"etcd Version: {pins.ETCD_VERSION.lstrip('v')}" in etcd.stdout


@pytest.mark.lab
def test_cached_binaries_are_reused_without_needing_go(
    built: LabBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _path_without_go(tmp_path, monkeypatch)
    assert ensure_binaries() == built


def _stub_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_seconds: float) -> None:
    """A stand-in `go` on PATH: reports go1.26.0 and 'builds' by sleeping, then writing the -o file.

    What is tested is eksir's own progress output around a build, not Go; a real build is minutes long.
    """
    bin_dir = _path_without_go(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    go = bin_dir / "go"
    go.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = env ]; then echo go1.26.0; exit 0; fi\n'
        'while [ "$#" -gt 0 ]; do if [ "$1" = -o ]; then out="$2"; fi; shift; done\n'
        f"sleep {build_seconds}\n"
        'echo "compiled" ; printf "#!/bin/sh\\n" > "$out"; chmod +x "$out"\n'
    )
    go.chmod(0o755)
    monkeypatch.setattr(build, "_HEARTBEAT_S", 0.2)


def test_a_first_build_says_what_it_builds_the_expected_duration_each_log_and_the_elapsed_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_go(tmp_path, monkeypatch, build_seconds=0.7)
    messages: list[str] = []
    binaries = ensure_binaries(cache_dir=tmp_path / "cache", progress=messages.append)
    target = build.binaries_dir(tmp_path / "cache")
    assert messages[0] == (
        f"first run: building etcd {pins.ETCD_VERSION}, kube-apiserver {pins.KUBERNETES_VERSION}, kubectl "
        f"{pins.KUBERNETES_VERSION} from the pinned Go modules, about 9 min on 2 cores (faster with more); "
        f"cached afterwards in {target}"
    )
    for program, expected in (
        ("etcd", "about 90 s"),
        ("kube-apiserver", "about 6 min"),
        ("kubectl", "about 2 min"),
    ):
        version = next(p.version for p in pins.PROGRAMS if p.name == program)
        log = target / f"build-{program}.log"
        assert f"building {program} {version} with Go, expected {expected}; log: {log}" in messages
        ticks = [m for m in messages if m.startswith(f"building {program} {version}: ")]
        assert ticks, messages
        assert all(m.endswith(f" s elapsed of {expected} expected") for m in ticks)
        assert f"built {program} {version} in " in " ".join(messages)
        assert "compiled" in log.read_text()
    assert binaries.etcd.is_file()


def test_eksir_lab_build_prints_the_progress_lines_with_elapsed_time_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stub_go(tmp_path, monkeypatch, build_seconds=0.5)
    monkeypatch.setenv("EKSIR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "400")
    code, out, err = run_in_process(["lab", "build"], capsys, monkeypatch)
    assert code == 0, err
    lines = err.splitlines()
    assert re.fullmatch(
        r" +\d+\.\ds first run: building etcd v[\d.]+, kube-apiserver v[\d.]+, kubectl v[\d.]+ .*", lines[0]
    )
    assert any(
        re.fullmatch(r" +\d+\.\ds building etcd v[\d.]+: \d+ s elapsed of about 90 s expected", x)
        for x in lines
    )
    assert any(f"log: {build.binaries_dir()}/build-kube-apiserver.log" in line for line in lines)
    assert lines[-1].startswith("built in ")
    assert out == ""


def test_a_build_that_fails_fast_still_names_its_log_in_the_progress_and_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stub_go(tmp_path, monkeypatch, build_seconds=0)
    (tmp_path / "empty-bin" / "go").write_text(
        '#!/bin/sh\nif [ "$1" = env ]; then echo go1.26.0; exit 0; fi\nexit 2\n'
    )
    messages: list[str] = []
    with pytest.raises(LabError) as caught:
        ensure_binaries(cache_dir=tmp_path / "cache", progress=messages.append)
    log = build.binaries_dir(tmp_path / "cache") / "build-etcd.log"
    assert messages[1].endswith(f"; log: {log}")
    assert f"full log: {log}" in caught.value.message
