"""Benchmark of the local hunt engine against the decompression floor, jq and DuckDB (run on demand).

    .venv/bin/python bench/bench_hunt.py --size-mb 1024

Generates realistic CloudTrail (real layout, `{"Records": [...]}` gzip, ~350 KB per file uncompressed,
varied ids so it compresses like real logs, a few hundred attacker records including a role chain) once
into a cache folder outside the repo, then measures in one run: eksir (Scanner, 2 workers) and the
inflate-only floor with libdeflate, the fastest inflate eksir uses (2 processes), alternating, --runs times
each, medians reported; the ISA-L floor for reference; jq over zcat (a subset, extrapolated); DuckDB
read_json (2 threads). Cores busy come from the CPU time of eksir's process and its workers; peak RSS of
the process tree is sampled from /proc by a separate process.
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


def _inflate_isal(paths: list[str]) -> int:
    return sum(len(igzip.decompress(Path(p).read_bytes())) for p in paths)


def floor(paths: list[str], library: str) -> tuple[float, int]:
    """Read and inflate every file, nothing else, on 2 forked processes (as eksir's workers are started)."""
    chunks = [paths[i : i + 32] for i in range(0, len(paths), 32)]
    work = _inflate_libdeflate if library == "libdeflate" else _inflate_isal
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        total = sum(pool.map(work, chunks))
    return time.perf_counter() - started, total


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
    import duckdb  # noqa: PLC0415 - the optional `bench` extra

    glob = str(tree / "AWSLogs" / "**" / "*.json.gz")
    sql = f"""SELECT count(*) FROM (SELECT unnest(Records) AS r FROM read_json('{glob}',
      columns={{'Records': 'JSON[]'}}, maximum_object_size=268435456, compression='gzip'))
      WHERE json_extract_string(r, '$.userIdentity.accessKeyId') IN ('{KEY}', '{CHAINED}')"""
    con = duckdb.connect()
    con.execute("SET threads=2")
    started = time.perf_counter()
    count = con.execute(sql).fetchone()[0]  # type: ignore[index]
    return time.perf_counter() - started, int(count)


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
    parser.add_argument("--runs", type=int, default=5, help="eksir and floor runs (the median is reported)")
    parser.add_argument("--sample-tree", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample_tree:
        TreeSampler(args.sample_tree).sample_until_stdin_closes()
        return
    started = time.perf_counter()
    tree = generate(args.cache_dir, args.size_mb)
    print(f"data: {tree} (generation/reuse {time.perf_counter() - started:.1f}s)")
    window = TimeWindow.parse("2024-08-01", "2024-08-04")
    refs = list(list_local(tree, window))
    paths = [r.location for r in refs]
    runs: list[tuple[float, float, ScanReport]] = []
    counting: list[tuple[float, float, ScanReport]] = []
    floors = []
    with TreeSampler() as sampler:  # peak memory over every eksir run
        for _ in range(args.runs):  # eksir and the floor alternate, so all see the same machine
            runs.append(_timed_scan(window, refs, count_events=False))
            counting.append(_timed_scan(window, refs, count_events=True))
            floors.append(floor(paths, "libdeflate"))
    eksir_s, cores, report = _median(runs)
    counted_s, _counted_cores, counted = _median(counting)
    floor_s = _median([(f[0], 0.0, None) for f in floors])[0]
    p = report.progress
    mb, events = p.bytes_inflated / 1e6, counted.progress.events
    print(
        f"files {p.files}, compressed {p.bytes_read / 1e6:.0f} MB, uncompressed {mb:.0f} MB, "
        f"events {events:,}; "
        f"median of {args.runs} alternating runs each"
    )
    print(
        f"eksir:  {eksir_s:6.2f}s  {mb / eksir_s:7.0f} MB/s  {events / eksir_s:10,.0f} events/s  "
        f"matched {len(report.records)} (chained keys: {sorted(report.principals.access_key_ids)}), "
        f"candidates {report.candidates}, rescanned {report.rescanned_files}  [{_times(runs)}]"
    )
    print(
        f"        CPU {cores:.2f} cores busy; peak RSS whole tree {sampler.peak_total / 1e6:.0f} MB, "
        f"largest process {sampler.peak_single / 1e6:.0f} MB"
    )
    print(
        f"eksir --count-events: {counted_s:6.2f}s  {mb / counted_s:7.0f} MB/s  {events / counted_s:10,.0f} "
        f"events/s  (counted {events:,}, matched {len(counted.records)})  [{_times(counting)}]"
    )
    print(
        f"floor:  {floor_s:6.2f}s  {mb / floor_s:7.0f} MB/s  {events / floor_s:10,.0f} events/s  "
        f"(libdeflate inflate only, 2 processes: the fastest inflate eksir uses)  [{_times(floors)}]"
    )
    isal_s, _isal_bytes = floor(paths, "isal")
    print(
        f"isal:   {isal_s:6.2f}s  {mb / isal_s:7.0f} MB/s  {events / isal_s:10,.0f} events/s  "
        "(ISA-L inflate only, 2 processes)"
    )
    jq_s, jq_files, jq_hits = run_jq(paths, args.jq_files)
    jq_rate = (mb * jq_files / len(paths)) / jq_s
    print(
        f"jq:     {jq_s:6.2f}s on {jq_files} files  {jq_rate:7.1f} MB/s  "
        f"{events * jq_files / len(paths) / jq_s:10,.0f} events/s  extrapolated "
        f"{mb / jq_rate:.0f}s for all ({jq_hits} hits in subset; zcat|jq, one core)"
    )
    ratios = [
        f"eksir/floor {floor_s / eksir_s:.2f}x (goal >= 0.8; {floor_s / counted_s:.2f}x counting events)",
        f"eksir/jq {(mb / eksir_s) / jq_rate:.0f}x (goal >= 25)",
    ]
    if not args.skip_duckdb:
        duck_s, duck_hits = run_duckdb(tree)
        print(
            f"duckdb: {duck_s:6.2f}s  {mb / duck_s:7.0f} MB/s  {events / duck_s:10,.0f} events/s  "
            f"({duck_hits} hits, 2 threads)"
        )
        ratios.append(f"eksir/duckdb {duck_s / eksir_s:.1f}x (goal >= 5)")
    ratios.append(f"peak RSS {sampler.peak_total / 1e6:.0f} MB (goal < 300)")
    ratios.append(f"cores {cores:.2f} (goal: both)")
    print("ratios: " + "; ".join(ratios))


def _median(runs: list[tuple[float, float, Any]]) -> tuple[float, float, Any]:
    return sorted(runs, key=lambda run: run[0])[len(runs) // 2]


def _times(runs: list[tuple[float, Any]] | list[tuple[float, float, Any]]) -> str:
    return ", ".join(f"{run[0]:.2f}" for run in runs) + " s"


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
