"""Health and metrics: one JSON line per interval on stdout, and a Prometheus endpoint (`--metrics-port`).

Why both: a container platform reads stdout (CloudWatch Logs, `kubectl logs`) without any scraping set up,
and a Prometheus endpoint is what a fleet's dashboards and alerts already scrape. The counters are the
same numbers in both: processed, failed, rejected, repeats, in flight, and lag (seconds from a message's
send to the worker finishing it).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

COUNTERS = ("received", "processed", "failed", "rejected", "repeats", "continued")


@dataclass
class Metrics:
    """Thread-safe counters; `snapshot()` is what the JSON line and the Prometheus collector read."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    in_flight: int = 0
    lag_s: float = 0.0
    started: float = field(default_factory=time.monotonic)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        with self._guard:
            self.counts[name] = self.counts.get(name, 0) + n

    def begin(self) -> None:
        with self._guard:
            self.in_flight += 1

    def end(self, sent_at_ms: int) -> None:
        with self._guard:
            self.in_flight -= 1
            if sent_at_ms:
                self.lag_s = max(0.0, time.time() - sent_at_ms / 1000)

    def snapshot(self) -> dict[str, Any]:
        with self._guard:
            return {
                **self.counts,
                "in_flight": self.in_flight,
                "lag_s": round(self.lag_s, 3),
                "uptime_s": round(time.monotonic() - self.started, 1),
            }


class HealthLine:
    """Prints `{"eksir-serve": {...}}` every `interval` seconds until stopped (and once at the end)."""

    def __init__(self, metrics: Metrics, interval: float, out: TextIO | None = None) -> None:
        self.metrics = metrics
        self.interval = interval
        self.out = out or sys.stdout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eksir-health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def emit(self) -> None:
        line = orjson.dumps({"eksir-serve": self.metrics.snapshot()}).decode()
        self.out.write(line + "\n")
        self.out.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)
        self.emit()


def serve_prometheus(metrics: Metrics, port: int) -> None:
    """Expose the counters at http://0.0.0.0:`port`/metrics (a daemon thread of prometheus-client)."""
    from prometheus_client import start_http_server  # noqa: PLC0415 - only with --metrics-port
    from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415
    from prometheus_client.registry import Collector  # noqa: PLC0415

    class _Collector(Collector):
        def collect(self) -> Any:
            snap = metrics.snapshot()
            for name in COUNTERS:
                yield CounterMetricFamily(f"eksir_serve_{name}", f"messages {name}", value=snap[name])
            yield GaugeMetricFamily(
                "eksir_serve_in_flight", "messages being worked on", value=snap["in_flight"]
            )
            yield GaugeMetricFamily(
                "eksir_serve_lag_seconds", "send to done, last message", value=snap["lag_s"]
            )

    REGISTRY.register(_Collector())
    start_http_server(port)
