"""The Python client against a real `docextract serve` process with an API key: real requests, no mocks."""

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from docextract_client import Client, DocextractError, TrainingRun
from docextract_client.http import retry_after
from service.settings import Settings
from tests.fixtures.forms import SyntheticPage
from tests.service.api.routes.test_training import dataset_zip
from tests.service.support import DocextractProcess, free_port, is_ready, wait_for

API_KEY = "client-key-0123456789"
WORDS = {
    "pages": [
        {
            "width": 200,
            "height": 100,
            "words": [{"text": "Name:", "box": [10, 10, 60, 30]}, {"text": "Ann", "box": [70, 10, 110, 30]}],
        }
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, serving_model: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("client")
    options = Settings(
        data_dir=folder / "data",
        default_model_dir=serving_model,
        port=free_port(),
        model_threads=1,
        ocr_workers=1,
        train_threads=1,
        queue_poll_s=0.1,
        ocr_quality="fast",
        api_keys=[API_KEY],
    )
    base = f"http://127.0.0.1:{options.port}"
    with DocextractProcess(["serve"], options, folder / "serve.log") as process:
        wait_for(lambda: is_ready(base), 60, 0.2)
        yield base
        assert process.process is not None and process.process.poll() is None, process.output()[-2000:]


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server, api_key=API_KEY, timeout=60) as client:
        yield client


def png(page: SyntheticPage) -> bytes:
    buffer = io.BytesIO()
    page.image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_extract_json_words_a_png_file_and_bytes(client: Client, tmp_path: Path, synthetic_pages):
    words = client.extract(WORDS)
    assert [w["text"] for w in words.pages[0]["words"]] == ["Name:", "Ann"]
    assert words.model.id == "default"
    path = tmp_path / "form.png"
    path.write_bytes(png(synthetic_pages[0]))
    from_file = client.extract(path)
    assert len(from_file.pages) == 1 and from_file.pages[0]["words"]
    assert client.extract(path.read_bytes()).document_id == from_file.document_id


def test_a_job_is_waited_to_its_end_and_its_results_iterated(client: Client, synthetic_pages):
    stored = client.documents.upload(json.dumps(WORDS).encode(), filename="words.json")
    assert client.documents.get(stored.id).filename == "words.json"
    assert stored.id in {d.id for d in client.documents.list(page_size=1)}
    job = client.jobs.submit(files=[("form.png", png(synthetic_pages[1]))], document_ids=[stored.id])
    assert job.progress.total == 2
    done = client.jobs.wait(job.id, timeout=120)
    assert done.status == "succeeded" and done.progress.done == 2
    results = list(client.jobs.results(job.id))
    assert {r.document.document_id for r in results} == {d.document_id for d in done.documents}
    assert all(r.result is not None and r.result.document_id == r.document.document_id for r in results)
    assert client.documents.result(stored.id).pages[0]["words"][1]["text"] == "Ann"
    client.documents.delete(stored.id)
    with pytest.raises(DocextractError) as missing:
        client.documents.get(stored.id)
    assert missing.value.status == 404


def test_an_error_answer_raises_with_its_problem_document(client: Client):
    with pytest.raises(DocextractError) as error:
        client.jobs.cancel("job_" + "0" * 32)
    problem = error.value
    assert problem.status == 404 and problem.type.endswith("job-not-found"), problem.problem
    assert problem.title and "job_" in problem.detail and problem.request_id
    with pytest.raises(DocextractError) as unreadable:
        client.extract(b"GIF89a\x01\x00", filename="x.gif")
    assert unreadable.value.status == 415


def test_the_api_key_is_sent(server: str, client: Client):
    with Client(server) as anonymous, pytest.raises(DocextractError) as refused:
        anonymous.models.list()
    assert refused.value.status == 401 and "X-API-Key" in refused.value.detail
    models = client.models.list()
    assert [m.id for m in models if m.active] == ["default"]


@pytest.mark.slow
def test_a_training_run_is_waited_with_progress_and_its_model_managed(client: Client, synthetic_dataset):
    run = client.training_runs.submit(dataset_zip(synthetic_dataset), epochs=1, validation_fraction=0.25)
    seen: list[TrainingRun] = []
    done = client.training_runs.wait(run.id, on_progress=seen.append, timeout=300)
    assert done.status == "succeeded", done.error
    assert seen[-1] is done and len(seen) >= 2 and done.progress.phase == "finished"
    assert client.models.activate(done.model_id).active is True
    assert client.extract(WORDS).model.id == done.model_id
    client.models.activate("default")
    client.models.delete(done.model_id)
    assert [m.id for m in client.models.list()] == ["default"]


def test_retry_after_in_seconds_or_as_a_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"retry-after": "3"}, now) == 3.0
    assert retry_after({"retry-after": "Thu, 01 Jan 2026 12:00:05 GMT"}, now) == 5.0
    assert retry_after({"retry-after": "Thu, 01 Jan 2026 11:00:00 GMT"}, now) == 0.0
    assert retry_after({}, now) is None and retry_after({"retry-after": "soon"}, now) is None


def readme_example() -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Python client", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs(server: str, tmp_path: Path, synthetic_pages, monkeypatch, capsys):
    code = (
        readme_example()
        .replace("http://127.0.0.1:8000", server)
        .replace('api_key="KEY"', f'api_key="{API_KEY}"')
    )
    assert server in code and API_KEY in code
    (tmp_path / "form.png").write_bytes(png(synthetic_pages[2]))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("default ") and printed[-1].startswith("404 ") and "succeeded" in printed[-2]
