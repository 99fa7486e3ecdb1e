"""How long `eksir` takes from start to exit for short commands, beside the interpreter's own floor.

    .venv/bin/python bench/bench_cli_start.py [--runs 11]

Every side is a whole process, as a user runs it, alternating --runs times; medians (and the range) are
reported with the load average, since this 2-vCPU machine is shared and its speed drifts:

- `python -c pass`: the interpreter alone;
- `python -c "import typer.rich_utils"`: the bare import floor of a typer CLI with rich help (what any
  `--help` of such a CLI must import);
- `eksir --help`, `eksir hunt --help`;
- a one-file `eksir hunt` (one CloudTrail file of the test tree, `-o json`) beside the inflate-only floor
  process over the same file (`inflate_floor.py`);
- a one-finding `eksir triage --no-case -o json`.

Goals (issue 11): `eksir --help` <= 0.25 s median, one-file `eksir hunt` <= 0.35 s median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / "tests" / "data" / "hunt" / "tree"
FINDING = REPO / "tests" / "data" / "findings" / "iam-user.wire.json"
PRINCIPAL = "AKIAATTACKER00000001"
GOALS = {"eksir --help": 0.25, "eksir hunt, one file": 0.35}


def sides(one_file_tree: Path, one_file: Path) -> dict[str, list[str]]:
    """Each side's argv; `eksir` is the console script next to this interpreter."""
    python, eksir = sys.executable, str(Path(sys.executable).with_name("eksir"))
    floor = str(Path(__file__).with_name("inflate_floor.py"))
    hunt = [eksir, "hunt", "-p", PRINCIPAL, "--since", "2024-08-01", "--until", "2024-08-05"]
    return {
        "python -c pass": [python, "-c", "pass"],
        "import floor (typer + rich help)": [python, "-c", "import typer.rich_utils"],
        "eksir --help": [eksir, "--help"],
        "eksir hunt --help": [eksir, "hunt", "--help"],
        "eksir hunt, one file": [*hunt, "-s", str(one_file), "-o", "json"],
        "inflate floor, one file": [python, floor, str(one_file_tree)],
        "eksir triage, one finding": [eksir, "triage", str(FINDING), "--no-case", "-o", "json"],
    }


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys, with any worker it reaped) of one whole process."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise subprocess.CalledProcessError(os.waitstatus_to_exitcode(status), argv)
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each side, alternating")
    args = parser.parse_args()
    one_file = sorted(TREE.rglob("*.json.gz"))[0]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(one_file, tmp)
        argvs = sides(Path(tmp), one_file)
        for argv in argvs.values():  # warm the page cache and .pyc files once, not measured
            timed(argv)
        load = os.getloadavg()[0]
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in argvs}
        for _ in range(args.runs):
            for name, argv in argvs.items():
                times[name].append(timed(argv))
    print(
        f"whole processes, median of {args.runs} alternating runs (min-max); load average {load:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs; one file: {one_file.name}"
    )
    print("(CPU = user + sys of the process and its workers: what the run costs, whatever the load)")
    for name, runs in times.items():
        walls = [wall for wall, _cpu in runs]
        wall, cpu = statistics.median(walls), statistics.median(cpu for _wall, cpu in runs)
        goal = GOALS.get(name)
        verdict = f"  goal <= {goal:.2f} s: {'met' if wall <= goal else 'NOT met'}" if goal else ""
        print(f"{name:<34} {wall:6.3f} s  ({min(walls):.3f}-{max(walls):.3f})  CPU {cpu:.3f} s{verdict}")


if __name__ == "__main__":
    main()
