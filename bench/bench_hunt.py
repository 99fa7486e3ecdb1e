"""Benchmark of `eksir hunt` against the decompression floor, jq and DuckDB, all as whole processes.

    .venv/bin/python bench/bench_hunt.py --size-mb 1024

Generates realistic CloudTrail (real layout, `{"Records": [...]}` gzip, ~350 KB per file uncompressed,
varied ids so it compresses like real logs, a few hundred attacker records including a role chain) once
into a cache folder outside the repo, then measures in one run, alternating, --runs times each, medians
reported: the `eksir hunt` process from start to exit (what a user runs: interpreter, imports, listing,
2 scan workers, classification, JSON output), the same with `--count-events`, and the floor as a whole
process (`inflate_floor.py`: list the tree, read and inflate every file with libdeflate, the fastest inflate
eksir uses, on 2 forked processes); then once each: the ISA-L floor process (reference), `zcat | jq` on a
subset (extrapolated) and a DuckDB `read_json` process (2 threads). The Scanner alone, in this process, is
shown in addition (it is not what a user runs). Cores busy come from the CPU time of the eksir process
and its workers; peak RSS of the process tree is sampled from /proc by a separate process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import select
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import deflate
import orjson
from isal import igzip

from eksir.hunt.principals import PrincipalSet
from eksir.hunt.scan import Scanner, ScanReport
from eksir.hunt.sources.files import FileRef, list_local
from eksir.hunt.window import TimeWindow

ACCOUNT, REGION = "111122223333", "us-east-1"
KEY, CHAINED = "AKIABENCHATTACKER001", "ASIABENCHCHAINED0001"
START = datetime(2024, 8, 1, tzinfo=UTC)
SINCE, UNTIL = "2024-08-01", "2024-08-04"
SERVICES = [
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("s3.amazonaws.com", "GetObject"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("kms.amazonaws.com", "Decrypt"),
    ("ec2.amazonaws.com", "DescribeNetworkInterfaces"),
    ("logs.amazonaws.com", "PutLogEvents"),
    ("eks.amazonaws.com", "DescribeCluster"),
    ("ssm.amazonaws.com", "UpdateInstanceInformation"),
]


def _rand(rng: random.Random, n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") -> str:
    return "".join(rng.choices(alphabet, k=n))


def _record(
    rng: random.Random, when: datetime, key: str | None = None, name: tuple[str, str] | None = None
) -> dict[str, object]:
    source, event = name or rng.choice(SERVICES)
    n = rng.randrange(300)
    session = f"i-0{rng.getrandbits(60):015x}"
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROA{_rand(rng, 17)}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/node-role-{n}/{session}",
            "accountId": ACCOUNT,
            "accessKeyId": key or f"ASIA{_rand(rng, 16)}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROA{_rand(rng, 17)}",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/node-role-{n}",
                    "accountId": ACCOUNT,
                    "userName": f"node-role-{n}",
                },
                "attributes": {"creationDate": f"{when:%Y-%m-%dT%H:%M:%SZ}", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": f"{when:%Y-%m-%dT%H:%M:%SZ}",
        "eventSource": source,
        "eventName": event,
        "awsRegion": REGION,
        "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": f"aws-sdk-go-v2/1.{rng.randrange(40)}.{rng.randrange(20)} os/linux lang/go#1.22",
        "requestParameters": {
            "bucketName": f"data-{_rand(rng, 8).lower()}",
            "key": f"p/{_rand(rng, 24).lower()}.parquet",
            "maxResults": 1000,
        },
        "responseElements": None,
        "requestID": _rand(rng, 20),
        "eventID": f"{rng.getrandbits(128):032x}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{source.split('.')[0]}.{REGION}.amazonaws.com",
        },
    }


def generate(root: Path, size_mb: int) -> Path:
    """Write the tree once; a marker file makes later runs reuse it."""
    tree = root / f"tree-{size_mb}mb"
    if (tree / ".complete").exists():
        return tree
    rng = random.Random(42)
    per_file = 300
    approx = len(orjson.dumps(_record(rng, START))) * per_file
    files = max(8, size_mb * 1024 * 1024 // approx)
    plant = set(rng.sample(range(files), min(files, 150)))
    chain_file = min(plant)
    for index in range(files):
        delivered = START + timedelta(minutes=5 * index * (3 * 24 * 60 // 5) // files + 5)
        records = [_record(rng, delivered - timedelta(seconds=rng.randrange(300))) for _ in range(per_file)]
        if index in plant:
            key = KEY if index <= chain_file else rng.choice([KEY, CHAINED])
            records[1] = _record(
                rng, delivered - timedelta(seconds=30), key, ("iam.amazonaws.com", "CreateUser")
            )
            records[2] = _record(
                rng, delivered - timedelta(seconds=20), key, ("s3.amazonaws.com", "ListBuckets")
            )
        if index == chain_file:
            records[3] = _record(
                rng, delivered - timedelta(seconds=10), KEY, ("sts.amazonaws.com", "AssumeRole")
            )
            records[3]["responseElements"] = {"credentials": {"accessKeyId": CHAINED}}
        folder = tree / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / f"{delivered:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{ACCOUNT}_CloudTrail_{REGION}_{delivered:%Y%m%dT%H%M}Z_{index:08x}.json.gz"
        (folder / name).write_bytes(igzip.compress(orjson.dumps({"Records": records}), compresslevel=1))
    (tree / ".complete").write_text("ok")
    return tree


class TreeSampler:
    """CPU time and RSS of this process and its descendants, sampled from /proc by a separate process.

    Not a thread: a second thread in this process would make the scanner start its workers with
    `forkserver` instead of `fork` (see eksir.hunt.workers.start_context), so the measurement would change
    what it measures. The sampler process leaves itself out of the tree it sums.
    """

    def __init__(self, root: int | None = None) -> None:
        self.root = root or os.getpid()
        self.cpu: dict[int, float] = {}
        self.peak_total = 0
        self.peak_single = 0
        self.baseline: dict[int, float] = {}
        self._tick = os.sysconf("SC_CLK_TCK")

    def _tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        mine, grew = {self.root}, True
        while grew:
            more = {pid for pid, ppid in parents.items() if ppid in mine and pid not in mine}
            mine |= more
            grew = bool(more)
        mine.discard(os.getpid())
        return sorted(mine)

    def _sample(self) -> None:
        total = 0
        for pid in self._tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            self.cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
            rss = next(
                (int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS")), 0
            )
            total += rss
            self.peak_single = max(self.peak_single, rss)
        self.peak_total = max(self.peak_total, total)

    def sample_until_stdin_closes(self) -> None:
        """The sampler process: first sample (the baseline), 'ready', samples every 0.1 s, then the totals."""
        self._sample()
        self.baseline = dict(self.cpu)
        print("ready", flush=True)
        while not select.select([sys.stdin], [], [], 0.1)[0]:
            self._sample()
        self._sample()
        print(
            orjson.dumps(
                {"cpu": self.cpu, "baseline": self.baseline, "peaks": [self.peak_total, self.peak_single]},
                option=orjson.OPT_NON_STR_KEYS,
            ).decode(),
            flush=True,
        )

    def __enter__(self) -> TreeSampler:
        argv = [sys.executable, __file__, "--sample-tree", str(self.root)]
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self._process.stdout.readline()  # "ready": the baseline is taken
        return self

    def __exit__(self, *exc: object) -> None:
        output, _ = self._process.communicate("")
        measured = orjson.loads(output.splitlines()[-1])
        self.cpu = {int(pid): cpu for pid, cpu in measured["cpu"].items()}
        self.baseline = {int(pid): cpu for pid, cpu in measured["baseline"].items()}
        self.peak_total, self.peak_single = measured["peaks"]


def _inflate_libdeflate(paths: list[str]) -> int:
    return sum(len(deflate.gzip_decompress(Path(p).read_bytes())) for p in paths)


def floor(paths: list[str]) -> tuple[float, int]:
    """In this process (shown in addition): read and inflate every file, on 2 forked processes."""
    chunks = [paths[i : i + 32] for i in range(0, len(paths), 32)]
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        total = sum(pool.map(_inflate_libdeflate, chunks))
    return time.perf_counter() - started, total


@dataclass(frozen=True)
class Process:
    """One whole process from start to exit: wall seconds, cores busy (its CPU and its workers'), output."""

    seconds: float
    cores: float
    stdout: bytes


def run_process(argv: list[str]) -> Process:
    """Run `argv` to completion; CPU time is that of the process and every child it reaped."""
    before, started = os.times(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=True)
    elapsed, after = time.perf_counter() - started, os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Process(elapsed, cpu / elapsed, done.stdout)


def eksir_argv(tree: Path, *, count_events: bool) -> list[str]:
    """`eksir hunt` exactly as a user runs it: the console script next to this interpreter."""
    eksir = str(Path(sys.executable).with_name("eksir"))
    argv = [eksir, "hunt", "-p", KEY, "--since", SINCE, "--until", UNTIL, "-s", str(tree), "-o", "json"]
    return [*argv, "--count-events"] if count_events else argv


def _beside(script: str) -> str:
    return str(Path(__file__).with_name(script))


def floor_argv(tree: Path, library: str) -> list[str]:
    return [sys.executable, _beside("inflate_floor.py"), str(tree), "--library", library]


def run_jq(paths: list[str], limit: int) -> tuple[float, int, int]:
    subset = paths[:limit]
    wanted = f'.userIdentity.accessKeyId == "{KEY}" or .userIdentity.accessKeyId == "{CHAINED}"'
    program = f".Records[] | select({wanted}) | .eventID"
    started = time.perf_counter()
    zcat = subprocess.Popen(["zcat", *subset], stdout=subprocess.PIPE)
    out = subprocess.run(["/usr/bin/jq", "-r", program], stdin=zcat.stdout, capture_output=True, check=True)
    zcat.wait()
    return time.perf_counter() - started, len(subset), len(out.stdout.splitlines())


def run_duckdb(tree: Path) -> tuple[float, int]:
    """A whole process that imports DuckDB (the optional `bench` extra) and runs the query, 2 threads."""
    done = run_process([sys.executable, _beside("duckdb_query.py"), str(tree), KEY, CHAINED])
    return done.seconds, int(done.stdout)


@dataclass
class Sides:
    """Every alternating run of one bench, per side."""

    eksir: list[Process] = field(default_factory=list)
    counting: list[Process] = field(default_factory=list)
    floor: list[Process] = field(default_factory=list)
    scanner: list[tuple[float, float, ScanReport]] = field(default_factory=list)
    scanner_floor: list[tuple[float, int]] = field(default_factory=list)


def measure(tree: Path, refs: list[FileRef], runs: int) -> tuple[Sides, TreeSampler]:
    """The sides alternate, so all of them see the same machine; RSS is sampled over all of it."""
    window = TimeWindow.parse(SINCE, UNTIL)
    paths = [r.location for r in refs]
    sides = Sides()
    with TreeSampler() as sampler:
        for _ in range(runs):
            sides.eksir.append(run_process(eksir_argv(tree, count_events=False)))
            sides.counting.append(run_process(eksir_argv(tree, count_events=True)))
            sides.floor.append(run_process(floor_argv(tree, "libdeflate")))
            sides.scanner.append(_timed_scan(window, refs, count_events=False))
            sides.scanner_floor.append(floor(paths))
    return sides, sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eksir-bench",
    )
    parser.add_argument("--jq-files", type=int, default=60, help="files for the jq subset (extrapolated)")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (the median is reported)")
    parser.add_argument("--sample-tree", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample_tree:
        TreeSampler(args.sample_tree).sample_until_stdin_closes()
        return
    started = time.perf_counter()
    tree = generate(args.cache_dir, args.size_mb)
    print(f"data: {tree} (generation/reuse {time.perf_counter() - started:.1f}s)")
    refs = list(list_local(tree, TimeWindow.parse(SINCE, UNTIL)))
    load = os.getloadavg()[0]
    sides, sampler = measure(tree, refs, args.runs)
    eksir = report(args, refs, sides, sampler, load)
    _others(args, tree, refs, eksir)


@dataclass(frozen=True)
class Medians:
    """The median whole-process runs and the totals every rate is computed from."""

    eksir: Process
    counting: Process
    floor: Process
    mb: float
    events: int


def report(
    args: argparse.Namespace, refs: list[FileRef], sides: Sides, sampler: TreeSampler, load: float
) -> Medians:
    eksir, counting = _median_process(sides.eksir), _median_process(sides.counting)
    floor_run = _median_process(sides.floor)
    found, counted = orjson.loads(eksir.stdout), orjson.loads(counting.stdout)
    mb = sum(s["bytes_scanned"] for s in found["sources"]) / 1e6
    events = sum(s["events_scanned"] for s in counted["sources"])
    compressed = sum(s["bytes_read"] for s in found["sources"]) / 1e6
    print(
        f"files {len(refs)}, compressed {compressed:.0f} MB, uncompressed {mb:.0f} MB, events {events:,}; "
        f"median of {args.runs} alternating runs of each side; load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs"
    )
    print(
        f"eksir hunt process:  {eksir.seconds:6.2f}s  {mb / eksir.seconds:7.0f} MB/s  "
        f"{events / eksir.seconds:10,.0f} events/s  matched {len(found['events'])} "
        f"(chained: {found.get('chained_principals')})  [{_times(sides.eksir)}]"
    )
    print(
        f"        CPU {eksir.cores * eksir.seconds:.2f} s, {eksir.cores:.2f} cores busy; "
        f"peak RSS whole tree {sampler.peak_total / 1e6:.0f} MB "
        f"(this bench process included), largest process {sampler.peak_single / 1e6:.0f} MB"
    )
    print(
        f"eksir hunt --count-events: {counting.seconds:6.2f}s  {mb / counting.seconds:7.0f} MB/s  "
        f"(counted {events:,}, matched {len(counted['events'])})  [{_times(sides.counting)}]"
    )
    print(
        f"floor process:       {floor_run.seconds:6.2f}s  {mb / floor_run.seconds:7.0f} MB/s  "
        f"{events / floor_run.seconds:10,.0f} events/s  (list + read + libdeflate inflate only, 2 processes; "
        f"CPU {floor_run.cores * floor_run.seconds:.2f} s)  [{_times(sides.floor)}]"
    )
    _in_process_lines(sides, mb)
    return Medians(eksir, counting, floor_run, mb, events)


def _in_process_lines(sides: Sides, mb: float) -> None:
    """The Scanner alone and the inflate alone, inside this process: shown in addition, never instead."""
    scan_s, _cores, scanned = _median(sides.scanner)
    floor_s = sorted(run[0] for run in sides.scanner_floor)[len(sides.scanner_floor) // 2]
    print(
        f"in this process (not what a user runs): Scanner {scan_s:.2f}s ({mb / scan_s:.0f} MB/s, "
        f"{len(scanned.records)} matched, candidates {scanned.candidates}, rescanned "
        f"{scanned.rescanned_files}), inflate floor {floor_s:.2f}s: {floor_s / scan_s:.2f}x  "
        f"[{_times(sides.scanner)}]"
    )


def _others(args: argparse.Namespace, tree: Path, refs: list[FileRef], medians: Medians) -> None:
    """ISA-L, jq and DuckDB once each, after the alternating runs, and every ratio to eksir's process."""
    mb, events, eksir = medians.mb, medians.events, medians.eksir
    isal = run_process(floor_argv(tree, "isal"))
    print(f"isal floor process:  {isal.seconds:6.2f}s  {mb / isal.seconds:7.0f} MB/s  (ISA-L, 2 processes)")
    paths = [r.location for r in refs]
    jq_s, jq_files, jq_hits = run_jq(paths, args.jq_files)
    jq_rate = (mb * jq_files / len(paths)) / jq_s
    print(
        f"jq:     {jq_s:6.2f}s on {jq_files} files  {jq_rate:7.1f} MB/s  "
        f"{events * jq_files / len(paths) / jq_s:10,.0f} events/s  extrapolated "
        f"{mb / jq_rate:.0f}s for all ({jq_hits} hits in subset; zcat|jq, one core)"
    )
    ratios = [
        f"eksir/floor {medians.floor.seconds / eksir.seconds:.2f}x (goal >= 0.8; "
        f"{medians.floor.seconds / medians.counting.seconds:.2f}x counting events)",
        f"eksir/jq {(mb / eksir.seconds) / jq_rate:.0f}x (goal >= 25)",
    ]
    if not args.skip_duckdb:
        duck_s, duck_hits = run_duckdb(tree)
        print(
            f"duckdb process: {duck_s:6.2f}s  {mb / duck_s:7.0f} MB/s  {events / duck_s:10,.0f} events/s  "
            f"({duck_hits} hits, 2 threads)"
        )
        ratios.append(f"eksir/duckdb {duck_s / eksir.seconds:.1f}x (goal >= 5)")
    ratios.append(f"cores {eksir.cores:.2f} (goal: both)")
    cpu_ratio = (medians.floor.cores * medians.floor.seconds) / (eksir.cores * eksir.seconds)
    ratios.append(f"CPU seconds floor/eksir {cpu_ratio:.2f} (the cost, whatever the load)")
    print("ratios (whole processes): " + "; ".join(ratios))


def _median_process(runs: list[Process]) -> Process:
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def _median(runs: list[tuple[float, float, Any]]) -> tuple[float, float, Any]:
    return sorted(runs, key=lambda run: run[0])[len(runs) // 2]


def _times(runs: list[Process] | list[tuple[float, float, Any]]) -> str:
    return ", ".join(f"{run.seconds if isinstance(run, Process) else run[0]:.2f}" for run in runs) + " s"


def _timed_scan(
    window: TimeWindow, refs: list[FileRef], *, count_events: bool
) -> tuple[float, float, ScanReport]:
    """One hunt over the tree: wall seconds, cores busy (CPU of this process and its reaped workers)."""
    before, started = os.times(), time.perf_counter()
    scanner = Scanner(window, workers=2, count_events=count_events)
    report = scanner.run(refs, PrincipalSet.from_values([KEY]))
    elapsed, after = time.perf_counter() - started, os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, own and children's
    return elapsed, cpu / elapsed, report


if __name__ == "__main__":
    main()
