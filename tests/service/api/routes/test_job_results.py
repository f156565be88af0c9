"""A job's results in one request (JSON or streamed NDJSON), page progress, Retry-After, and purging."""

import json

from fastapi.testclient import TestClient

from service.api.routes.jobs import result_lines
from service.store import Store
from tests.service.api.routes.test_extract import problem
from tests.service.support import job_files, wait_for_job


def finished_job(api: TestClient, count: int, query: str = "", start: int = 0) -> dict:
    response = api.post(f"/v1/jobs{query}", files=job_files(count, start=start))
    assert response.status_code == 202, response.text
    return wait_for_job(api, response.headers["location"])


def test_every_result_in_one_json_answer(api: TestClient):
    job = finished_job(api, 3)
    response = api.get(f"/v1/jobs/{job['id']}/results")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["job_id"], body["status"]) == (job["id"], "succeeded")
    assert body["progress"] == {"done": 3, "total": 3, "pages_done": 3}
    ids = [d["document_id"] for d in job["documents"]]
    assert [r["document_id"] for r in body["results"]] == ids
    for entry in body["results"]:
        assert (entry["status"], entry["error"], entry["pages"]) == ("succeeded", None, 1)
        assert entry["result"] == api.get(f"/v1/documents/{entry['document_id']}/result").json()
    problem(api.get("/v1/jobs/job_" + "0" * 32 + "/results"), 404, "job-not-found")


def test_results_stream_as_ndjson_one_document_a_line(api: TestClient):
    job = finished_job(api, 2)
    response = api.get(f"/v1/jobs/{job['id']}/results", headers={"Accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert response.text.endswith("\n") and len(lines) == 2
    assert [line["document_id"] for line in lines] == [d["document_id"] for d in job["documents"]]
    assert all(line["result"]["document_id"] == line["document_id"] and line["pages"] == 1 for line in lines)


def test_a_failed_or_unfinished_document_has_no_result(api: TestClient):
    store = api.app.state.services.store
    broken = store.add_document(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "broken.png", "png")
    response = api.post("/v1/jobs", files=job_files(1), data={"document_ids": broken["id"]})
    job = wait_for_job(api, response.headers["location"])
    results = {r["filename"]: r for r in api.get(f"/v1/jobs/{job['id']}/results").json()["results"]}
    assert results["broken.png"]["status"] == "failed" and "PNG" in results["broken.png"]["error"]
    assert results["broken.png"]["result"] is None and results["broken.png"]["pages"] is None
    assert results["doc0.json"]["result"]["document_id"] == results["doc0.json"]["document_id"]
    api.app.state.services.queue.stop()  # nothing is consumed: the next job stays queued
    queued = api.post("/v1/jobs", files=job_files(1, start=50)).json()
    (entry,) = api.get(f"/v1/jobs/{queued['id']}/results").json()["results"]
    assert (entry["status"], entry["result"], entry["pages"]) == ("queued", None, None)


def test_retry_after_while_a_job_is_queued_or_running_only(api: TestClient):
    api.app.state.services.queue.stop()
    response = api.post("/v1/jobs", files=job_files(1))
    assert response.status_code == 202 and response.headers["retry-after"] == "2"
    location = response.headers["location"]
    polled = api.get(location)
    assert polled.json()["status"] == "queued" and polled.headers["retry-after"] == "2"
    api.app.state.services.queue.start()
    wait_for_job(api, location)
    assert "retry-after" not in api.get(location).headers


def test_purge_deletes_an_ended_job_and_the_results_nothing_else_uses(api: TestClient):
    store: Store = api.app.state.services.store
    first = finished_job(api, 2)
    document_ids = [d["document_id"] for d in first["documents"]]
    first_keys = [store.job_item(f"{first['id']}:{d}")["result_key"] for d in document_ids]
    # the same documents again with other options: each document's latest result is now the second job's
    second = api.post("/v1/jobs?dpi=300", data={"document_ids": ",".join(document_ids)}).json()
    wait_for_job(api, f"/v1/jobs/{second['id']}")
    second_keys = [store.job_item(f"{second['id']}:{d}")["result_key"] for d in document_ids]
    assert set(first_keys).isdisjoint(second_keys)
    assert all(store.read_result(key) is not None for key in first_keys)

    response = api.delete(f"/v1/jobs/{first['id']}?purge=true")
    assert response.status_code == 204 and response.content == b""
    problem(api.get(f"/v1/jobs/{first['id']}"), 404, "job-not-found")
    problem(api.get(f"/v1/jobs/{first['id']}/results"), 404, "job-not-found")
    problem(api.delete(f"/v1/jobs/{first['id']}?purge=true"), 404, "job-not-found")
    assert all(store.read_result(key) is None for key in first_keys)  # nothing else pointed at them
    # what another job or the documents API still uses stays: the files and the latest results
    for document_id in document_ids:
        assert api.get(f"/v1/documents/{document_id}").status_code == 200
        assert api.get(f"/v1/documents/{document_id}/result").status_code == 200
    results = api.get(f"/v1/jobs/{second['id']}/results").json()["results"]
    assert all(r["result"] is not None for r in results)

    assert api.delete(f"/v1/jobs/{second['id']}?purge=true").status_code == 204
    assert all(store.read_result(key) is not None for key in second_keys)  # the documents' latest results
    assert [j["id"] for j in api.get("/v1/jobs").json()["jobs"]] == []


def test_a_job_that_has_not_ended_cannot_be_purged_and_cancel_still_works(api: TestClient):
    api.app.state.services.queue.stop()  # the job stays queued
    location = api.post("/v1/jobs", files=job_files(2)).headers["location"]
    body = problem(api.delete(f"{location}?purge=true"), 409, "job-not-ended")
    assert "cancel it first" in body["detail"]
    assert api.get(location).json()["status"] == "queued"  # untouched
    cancelled = api.delete(location)  # no purge: cancel, as before
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    problem(api.delete(location), 409, "job-finished")
    assert api.delete(f"{location}?purge=true").status_code == 204
    problem(api.get(location), 404, "job-not-found")


def test_ndjson_lines_read_each_result_only_when_they_are_sent(api: TestClient):
    """The stream holds one result at a time: a result file removed after the first line was produced is
    missing from the second line (the whole list was not read up front)."""
    services = api.app.state.services
    job = services.store.get_job(finished_job(api, 2)["id"])
    lines = result_lines(services, job)
    first = json.loads(next(lines))
    assert first["result"]["document_id"] == first["document_id"]
    key = job["documents"][1]["result_key"]
    (services.store.data_dir / "results" / key[:2] / f"{key}.json").unlink()
    second = json.loads(next(lines))
    assert (second["status"], second["result"]) == ("succeeded", None)
    assert next(lines, None) is None
