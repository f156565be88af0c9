"""Helpers of the API tests: small documents, polling, `docextract` child processes, an app served by uvicorn
in this process, and read-only folders."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from service.settings import Settings

FINAL = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def words_document(number: int) -> bytes:
    """A small already-recognised page (JSON words): cheap to extract, distinct bytes per `number`."""
    words = [
        {"text": "Name:", "box": [60, 80, 130, 100], "line": 0},
        {"text": f"Person{number}", "box": [140, 80, 260, 100], "line": 0},
        {"text": "Date:", "box": [60, 130, 120, 150], "line": 1},
        {"text": f"2024-01-{number % 28 + 1:02d}", "box": [130, 130, 250, 150], "line": 1},
        {"text": "Total:", "box": [60, 180, 130, 200], "line": 2},
        {"text": f"{number * 7}.00", "box": [140, 180, 220, 200], "line": 2},
    ]
    return json.dumps({"pages": [{"width": 600, "height": 800, "words": words}]}).encode()


def job_files(count: int, start: int = 0) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("files", (f"doc{n}.json", words_document(n), "application/json"))
        for n in range(start, start + count)
    ]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {check}")
        time.sleep(interval)


def is_ready(base: str) -> bool:
    """`/readyz` of the server at `base` answers 200 (not yet listening counts as not ready)."""
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_for_job(client: httpx.Client | Any, location: str, timeout: float = 60.0) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = client.get(location).json()
        return job if job["status"] in FINAL else None

    return wait_for(finished, timeout)  # type: ignore[no-any-return]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCEXTRACT_")}
    for name, value in settings.model_dump(mode="json").items():
        if isinstance(value, list):
            env[f"DOCEXTRACT_{name.upper()}"] = json.dumps(value)
        elif value is not None:
            env[f"DOCEXTRACT_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class DocextractProcess:
    """`docextract ARGS` in a child process with the given settings; killed (or stopped) on exit."""

    def __init__(self, args: list[str], settings: Settings, log: Path) -> None:
        self.args, self.settings, self.log_path = args, settings, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "DocextractProcess":
        executable = Path(sys.executable).with_name("docextract")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(executable), *self.args], env=settings_env(self.settings), stdout=self._log, stderr=self._log
        )
        return self

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash (no cleanup, no graceful shutdown)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> "DocextractProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """`app` served by a real uvicorn server on a free loopback port, in a thread of this process (its
    lifespan included); yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 60, 0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(60)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` and everything in it read-only while the block runs: immutable (`chattr +i`) for root, whom
    file modes do not stop, else without write permission. Fails the test (never skips it) where neither can
    be done."""
    if os.geteuid() == 0:
        make, undo = ["chattr", "-R", "+i", str(folder)], ["chattr", "-R", "-i", str(folder)]
    else:
        make, undo = ["chmod", "-R", "a-w", str(folder)], ["chmod", "-R", "u+w", str(folder)]
    if subprocess.run(make, capture_output=True, check=False).returncode != 0:
        subprocess.run(undo, capture_output=True, check=False)
        pytest.fail(f"cannot make {folder} read-only here ({make[0]} failed)")
    try:
        yield
    finally:
        subprocess.run(undo, check=True)
