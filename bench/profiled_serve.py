"""`python bench/profiled_serve.py OUT.prof serve ...`: `eksir serve` under cProfile, every thread included.

Why not `python -m cProfile -m eksir serve`: cProfile hooks only the thread that starts it, and a worker
does its work in its `eksir-serve-N` threads. This wraps `threading.Thread.run` so each thread runs under its
own profiler, and on exit (SIGTERM ends `eksir serve` normally) merges them into OUT.prof (pstats format).
Used by `bench_fleet.py --profile`; the product is unchanged.
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import sys
import threading

_PROFILES: list[cProfile.Profile] = []
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    _PROFILES.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def _dump(path: str) -> None:
    stats: pstats.Stats | None = None
    for profile in _PROFILES:
        profile.disable()
        try:
            stats = pstats.Stats(profile) if stats is None else stats.add(profile)
        except TypeError:  # a thread that recorded nothing
            continue
    if stats is not None:
        stats.dump_stats(path)


def main() -> None:
    out = sys.argv.pop(1)
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    _PROFILES.append(main_profile)
    atexit.register(_dump, out)
    main_profile.enable()
    sys.argv[0] = "eksir"
    runpy.run_module("eksir", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
