"""Prometheus metrics in the text exposition format (0.0.4), written here: no client library.

`Metrics` holds this process's counters and histograms: HTTP requests and latencies by route template,
documents and pages processed, and the pipeline's stage timings. Gauges that describe shared state (queue
depth, jobs and training runs by status, model loaded) are read when `/metrics` is scraped and passed to
`Metrics.render`; `docextract worker` serves them with `start_metrics_server`. `MetricsMiddleware` times
every request and labels it with the matched route template (never the raw path, so ids do not explode
the label space).
"""

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.schemas import ExtractionResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Labels = tuple[str, ...]


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{escape(v)}"' for n, v in zip(names, values, strict=True)) + "}"


def number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    name: str
    help: str
    label_names: Labels = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        out += [
            f"{self.name}{label_text(self.label_names, k)} {number(v)}"
            for k, v in sorted(self.values.items())
        ]
        return out


@dataclass
class Histogram:
    name: str
    help: str
    label_names: Labels = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)

    def observe(self, value: float, *labels: str) -> None:
        counts, totals = self.series.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
        for index, bound in enumerate((*self.buckets, math.inf)):
            if value <= bound:
                counts[index] += 1
        totals[0] += value

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        names = (*self.label_names, "le")
        for labels, (counts, totals) in sorted(self.series.items()):
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                out.append(f"{self.name}_bucket{label_text(names, (*labels, number(bound)))} {count}")
            out.append(f"{self.name}_sum{label_text(self.label_names, labels)} {number(totals[0])}")
            out.append(f"{self.name}_count{label_text(self.label_names, labels)} {counts[-1]}")
        return out


@dataclass(frozen=True)
class Gauge:
    """A value read at scrape time: `samples` maps label values to the number."""

    name: str
    help: str
    label_names: Labels
    samples: dict[Labels, float]

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        out += [
            f"{self.name}{label_text(self.label_names, k)} {number(v)}"
            for k, v in sorted(self.samples.items())
        ]
        return out


class Metrics:
    """The counters and histograms of one process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Counter(
            "docextract_http_requests_total", "HTTP requests by method, route and status.",
            ("method", "route", "status"),
        )  # fmt: skip
        self.latency = Histogram(
            "docextract_http_request_duration_seconds", "HTTP request latency by method and route.",
            ("method", "route"),
        )  # fmt: skip
        self.documents = Counter(
            "docextract_documents_processed_total",
            "Documents processed by this process, by source (extract, job) and outcome.",
            ("source", "outcome"),
        )
        self.pages = Counter(
            "docextract_pages_processed_total", "Pages extracted by this process, by source.", ("source",)
        )
        self.stages = Histogram(
            "docextract_stage_duration_seconds", "Time spent per document in each pipeline stage.",
            ("stage",), STAGE_BUCKETS,
        )  # fmt: skip

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests.inc(method, route, str(status))
            self.latency.observe(seconds, method, route)

    def observe_result(self, result: ExtractionResult, source: str) -> None:
        with self._lock:
            self.documents.inc(source, "succeeded")
            self.pages.inc(source, amount=len(result.pages))
            for stage, milliseconds in result.timings_ms.model_dump().items():
                self.stages.observe(milliseconds / 1000, stage)

    def observe_failure(self, source: str) -> None:
        with self._lock:
            self.documents.inc(source, "failed")

    def render(self, gauges: Iterable[Gauge] = ()) -> str:
        with self._lock:
            families = [self.requests, self.latency, self.documents, self.pages, self.stages]
            lines = [line for family in families for line in family.lines()]
        lines += [line for gauge in gauges for line in gauge.lines()]
        return "\n".join(lines) + "\n"


def start_metrics_server(render: Callable[[], str], host: str, port: int) -> ThreadingHTTPServer:
    """Serve `render()` at GET /metrics from a daemon thread (for `docextract worker`, which has no API)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
