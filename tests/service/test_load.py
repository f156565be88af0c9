"""Load on a real `docextract serve` process over loopback: 50 concurrent extractions all succeed, the
event loop stays responsive (`/healthz` latency measured throughout), the process's RSS stays bounded, and
with `log_format=json` every line it writes is one JSON object (one access record per request, each with
its own request id)."""

import asyncio
import base64
import io
import json
import statistics
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.settings import Settings
from tests.service.support import DocextractProcess, free_port, is_ready, wait_for, words_document

CONCURRENT = 50
# The 100 ms holds for the median; on a busy 2-core box single probes wait longer (measured with a
# training run beside it: median 12 ms, p90 37 ms, max 173 ms; without the extraction limiter p90 was 240+).
HEALTHZ_MEDIAN_MS = 100.0
HEALTHZ_P90_MS = 150.0
HEALTHZ_MAX_MS = 1000.0
RSS_GROWTH_MB = 400.0


def busy_document(number: int, pages: int = 3, lines: int = 30) -> bytes:
    """Already-recognised pages with a page image each (the model's image stream runs) and a few hundred
    words: tens of milliseconds of inference per page, distinct bytes per `number`."""
    image = io.BytesIO()
    Image.new("L", (600, 800), 255).save(image, "PNG")
    encoded = base64.b64encode(image.getvalue()).decode()
    words = []
    for line in range(lines):
        y = 20 + line * 25
        words += [
            {"text": f"Field{line}:", "box": [40, y, 130, y + 18], "line": line},
            {"text": f"value-{number}-{line}", "box": [150, y, 320, y + 18], "line": line},
        ]
    page = {"width": 600, "height": 800, "image": encoded, "words": words}
    return json.dumps({"pages": [page] * pages}).encode()


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def extract_all(base: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        requests = [
            client.post("/v1/extract", content=busy_document(n), headers={"X-Request-ID": f"load-{n}"})
            for n in range(CONCURRENT)
        ]
        return await asyncio.gather(*requests)


async def probe(base: str, pid: int, done: asyncio.Event) -> tuple[list[float], list[float]]:
    """`/healthz` latencies (ms) and RSS samples (MB) every 50 ms until `done`."""
    latencies, rss = [], []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not done.is_set():
            started = time.perf_counter()
            response = await client.get("/healthz")
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            rss.append(rss_mb(pid))
            await asyncio.sleep(0.05)
    return latencies, rss


async def under_load(base: str, pid: int) -> tuple[list[httpx.Response], list[float], list[float], float]:
    done = asyncio.Event()
    prober = asyncio.create_task(probe(base, pid, done))
    await asyncio.sleep(0.2)  # a few idle samples first
    started = time.perf_counter()
    responses = await extract_all(base)
    elapsed = time.perf_counter() - started
    done.set()
    latencies, rss = await prober
    return responses, latencies, rss, elapsed


@pytest.mark.slow
def test_50_concurrent_extractions_on_a_real_server(api_settings: Settings, tmp_path: Path):
    settings = api_settings.model_copy(update={"port": free_port(), "log_format": "json"})
    base = f"http://127.0.0.1:{settings.port}"
    with DocextractProcess(["serve"], settings, tmp_path / "serve.log") as server:
        assert server.process is not None
        wait_for(lambda: is_ready(base), 60, 0.2)
        assert httpx.post(f"{base}/v1/extract", content=words_document(999), timeout=60).status_code == 200
        baseline = rss_mb(server.process.pid)
        responses, latencies, rss, elapsed = asyncio.run(under_load(base, server.process.pid))
        after = rss_mb(server.process.pid)
    assert [r.status_code for r in responses] == [200] * CONCURRENT, [r.text for r in responses][:3]
    assert all(r.json()["pages"][0]["words"] for r in responses)
    assert [r.headers["x-request-id"] for r in responses] == [f"load-{n}" for n in range(CONCURRENT)]
    median, worst = statistics.median(latencies), max(latencies)
    p90 = statistics.quantiles(latencies, n=10, method="inclusive")[-1]
    print(
        f"\n{CONCURRENT} extractions in {elapsed:.2f} s; /healthz ({len(latencies)} probes) median "
        f"{median:.1f} ms, p90 {p90:.1f} ms, max {worst:.1f} ms; "
        f"RSS {baseline:.0f} MB before, peak {max(rss):.0f} MB, {after:.0f} MB after"
    )
    assert len(latencies) >= 5 and median < HEALTHZ_MEDIAN_MS and worst < HEALTHZ_MAX_MS
    assert p90 < HEALTHZ_P90_MS
    assert max(rss) - baseline < RSS_GROWTH_MB
    check_json_log(server.output())


def check_json_log(text: str) -> None:
    """Every line is a JSON object; each extraction has exactly one access record with its id."""
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [e for e in entries if e["logger"] == "docextract.access" and e["path"] == "/v1/extract"]
    ids = sorted(e["request_id"] for e in access if e["request_id"].startswith("load-"))
    assert ids == sorted(f"load-{n}" for n in range(CONCURRENT))
    assert all(e["status"] == 200 and e["method"] == "POST" and e["duration_ms"] > 0 for e in access)
