"""What `docextract serve` logs as it starts, works and stops: the model export (start, end, duration)
once, the queue's consumers in one line (not huey's four lines per queue), and task records that name the
job and document they work on."""

import re
from pathlib import Path

import httpx

from service.settings import Settings
from tests.service.support import DocextractProcess, free_port, is_ready, job_files, wait_for, wait_for_job


def test_serve_logs_its_start_once_and_tasks_by_job_and_document(
    exported_model, api_settings: Settings, tmp_path: Path
):
    # a trained model folder without ONNX files: the first start exports it
    settings = api_settings.model_copy(
        update={
            "port": free_port(),
            "default_model_dir": exported_model.model_dir,
            "log_level": "info",
            "queue_workers": 2,
        }
    )
    base = f"http://127.0.0.1:{settings.port}"
    with DocextractProcess(["serve"], settings, tmp_path / "serve.log") as server, httpx.Client() as client:
        wait_for(lambda: is_ready(base), 120, 0.2)
        response = client.post(f"{base}/v1/jobs", files=job_files(2), timeout=30)
        assert response.status_code == 202, response.text
        job = wait_for_job(client, base + response.headers["location"])
        assert job["status"] == "succeeded", job
    output = server.output()

    assert output.count("exporting the model in") == 1, output
    assert len(re.findall(r"exported the model to \S+ in \d+\.\d s", output)) == 1, output
    assert output.index("exporting the model in") < output.index("exported the model to")
    consuming = "consuming the sqlite queue: documents (2 threads: process_document, send_callback), "
    assert output.count(consuming + "training (1 thread: run_training)") == 1, output
    assert output.count("stopped consuming the sqlite queue") == 1, output
    for line in ("Huey consumer started", "The following commands", "Scheduler runs", "Shutting down grace"):
        assert line not in output, output
    for document in job["documents"]:
        task = f"process_document: {job['id']}:{document['document_id']}"
        assert f"Executing service.jobs.queue.{task}" in output, output
