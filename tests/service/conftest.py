"""Fixtures of the API tests: the tiny trained model as the service's default model, app settings on a
temporary data directory, a real `redis-server` on a free port, and `docextract` processes."""

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from model.artifact import WEIGHTS_FILE
from service.main import create_app
from service.settings import Settings
from tests.service.support import free_port


@pytest.fixture(scope="session")
def serving_model(exported_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as one folder: its ONNX serving files plus its trained weights (so training runs
    can start from it as `default`)."""
    folder = tmp_path_factory.mktemp("serving") / "model"
    shutil.copytree(exported_model.onnx_dir, folder)
    shutil.copyfile(exported_model.model_dir / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    return folder


@pytest.fixture
def api_settings(tmp_path: Path, serving_model: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        default_model_dir=serving_model,
        queue_poll_s=0.1,
        model_threads=1,
        ocr_workers=1,
        train_threads=1,
        lease_s=30.0,
    )


@pytest.fixture
def api(api_settings: Settings) -> Iterator[TestClient]:
    """The app on the embedded queue (SQLite, in-process consumer), through HTTP."""
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port (no persistence), stopped at the end of the session."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [*command, "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's redis-server, emptied for this test."""
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server
