"""Batch jobs through HTTP: create (files and/or stored ids), poll, cancel, callbacks, failures."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from service.jobs.callbacks import verify_signature
from service.main import create_app
from service.settings import Settings
from tests.fixtures.fake_pdf import FakePage, make_pdf
from tests.service.api.routes.test_documents import PNG, upload
from tests.service.api.routes.test_extract import problem
from tests.service.support import job_files, wait_for, wait_for_job, words_document


class CallbackReceiver:
    """A local HTTP server that records the JSON bodies POSTed to it (and their raw bytes and headers)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.hosts: list[str] = []  # the Host header of each request
        self.raw: list[tuple[dict[str, str], bytes]] = []  # the headers and the exact body of each request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                raw = self.rfile.read(length)
                receiver.raw.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                receiver.bodies.append(json.loads(raw))
                receiver.hosts.append(self.headers["host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def callback_api(api_settings: Settings) -> Iterator[TestClient]:
    """The app allowed to call back loopback addresses (the receiver listens on 127.0.0.1)."""
    settings = api_settings.model_copy(update={"allow_private_callbacks": True})
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_job_over_files_and_stored_documents(api: TestClient):
    first, second = upload(api, words_document(10)), upload(api, words_document(11))
    response = api.post(
        "/v1/jobs",
        files=job_files(2, start=20),
        data={"document_ids": [f"{first['id']},{second['id']}"]},
    )
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (
        job["status"] in ("queued", "running") and job["progress"]["total"] == 4 and job["model"] == "default"
    )
    assert [d["filename"] for d in job["documents"]] == ["doc.json", "doc.json", "doc20.json", "doc21.json"]
    done = wait_for_job(api, response.headers["location"])
    assert done["status"] == "succeeded" and done["progress"] == {"done": 4, "total": 4, "pages_done": 4}
    assert done["started"] and done["finished"]
    for document in done["documents"]:
        assert api.get(document["result_url"]).json()["document_id"] == document["document_id"]


def test_a_failing_document_fails_alone_and_the_job_reports_it(api: TestClient):
    """Uploads are checked now (a broken file refuses the job, below): this one was stored before."""
    store = api.app.state.services.store
    broken = store.add_document(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "broken.png", "png")
    response = api.post("/v1/jobs", files=job_files(2), data={"document_ids": broken["id"]})
    job = wait_for_job(api, response.headers["location"])
    assert job["status"] == "failed" and job["progress"] == {"done": 3, "total": 3, "pages_done": 2}
    statuses = {d["filename"]: (d["status"], d["error"], d["result_url"]) for d in job["documents"]}
    assert statuses["doc0.json"][0] == "succeeded"
    status, error, url = statuses["broken.png"]
    assert status == "failed" and "PNG" in error and url is None


def test_a_job_with_one_unreadable_file_is_refused_as_a_whole(api: TestClient):
    broken = ("files", ("broken.png", PNG[: len(PNG) // 2], "image/png"))
    body = problem(api.post("/v1/jobs", files=[*job_files(2), broken]), 422, "corrupt-file")
    assert "'broken.png'" in body["detail"]
    assert api.app.state.services.store.counts("job_documents") == {}
    assert api.get("/v1/jobs").json()["total"] == 0
    assert api.get("/v1/documents").json()["total"] == 0  # not even the good files


def test_a_document_that_comes_twice_refuses_the_job_and_nothing_is_stored(api: TestClient):
    stored = upload(api, words_document(30), "stored.json")
    twice = {"document_ids": [f"{stored['id']},{stored['id']}"]}
    assert stored["id"] in problem(api.post("/v1/jobs", data=twice), 400, "bad-request")["detail"]
    same_bytes = [
        ("files", (name, words_document(31), "application/json")) for name in ("a.json", "copy.json")
    ]
    body = problem(api.post("/v1/jobs", files=same_bytes), 400, "bad-request")
    assert "'a.json' and 'copy.json'" in body["detail"]
    stored_again = [("files", ("again.json", words_document(30), "application/json"))]
    assert (
        "'stored.json' and 'again.json'"
        in problem(
            api.post("/v1/jobs", files=stored_again, data={"document_ids": stored["id"]}), 400, "bad-request"
        )["detail"]
    )
    assert api.get("/v1/jobs").json()["total"] == 0 and api.get("/v1/documents").json()["total"] == 1


def test_the_page_limit_of_job_files_counts_the_selected_pages(api: TestClient):
    big = [("files", ("big.pdf", make_pdf([FakePage()] * 101), "application/pdf"))]
    assert "'big.pdf'" in problem(api.post("/v1/jobs", files=big), 413, "too-many-pages")["detail"]
    response = api.post("/v1/jobs?pages=2,200", files=big)  # page 200 fails the document, as before
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.headers["location"])
    assert "page 200 is not in the document" in job["documents"][0]["error"]


def test_the_callback_is_called_once_with_the_job(callback_api: TestClient, receiver: CallbackReceiver):
    api = callback_api
    response = api.post("/v1/jobs", files=job_files(3), data={"callback_url": receiver.url})
    assert response.json()["callback_url"] == receiver.url
    wait_for_job(api, response.headers["location"])
    wait_for(lambda: receiver.bodies)
    body = receiver.bodies[0]
    assert body["id"] == response.json()["id"] and body["status"] == "succeeded"
    assert body["progress"] == {"done": 3, "total": 3, "pages_done": 3}
    store = api.app.state.services.store
    wait_for(lambda: store.get_job(body["id"])["callback_state"] == "sent")
    api.app.state.services.worker.send_callback(body["id"])  # a second delivery of the task
    assert len(receiver.bodies) == 1
    headers, _ = receiver.raw[0]
    assert headers["content-type"] == "application/json"
    assert "x-docextract-signature" not in headers and "x-docextract-timestamp" not in headers  # no secret


def test_a_signed_callback_is_verified_by_its_receiver(api_settings: Settings, receiver: CallbackReceiver):
    secret = "receiver-and-service-share-this"
    settings = api_settings.model_copy(update={"allow_private_callbacks": True, "callback_secret": secret})
    with TestClient(create_app(settings)) as api:
        job_id = api.post("/v1/jobs", files=job_files(1), data={"callback_url": receiver.url}).json()["id"]
        wait_for(lambda: receiver.raw)
    headers, body = receiver.raw[0]
    timestamp, signature = headers["x-docextract-timestamp"], headers["x-docextract-signature"]
    assert json.loads(body)["id"] == job_id and signature.startswith("v1=")
    assert abs(int(timestamp) - time.time()) < 60
    assert verify_signature(secret, timestamp, body, signature, now=time.time())
    tampered = body.replace(b'"succeeded"', b'"failed"')
    assert tampered != body and not verify_signature(secret, timestamp, tampered, signature, now=time.time())
    assert not verify_signature("another secret", timestamp, body, signature, now=time.time())
    too_late = int(timestamp) + 301  # the default tolerance is 300 s
    assert not verify_signature(secret, timestamp, body, signature, now=too_late)


def test_cancel(callback_api: TestClient, receiver: CallbackReceiver):
    api = callback_api
    api.app.state.services.queue.stop()  # nothing is consumed: the job stays queued
    response = api.post("/v1/jobs", files=job_files(3), data={"callback_url": receiver.url})
    location = response.headers["location"]
    cancelled = api.delete(location)
    assert cancelled.status_code == 200
    job = cancelled.json()
    assert job["status"] == "cancelled" and {d["status"] for d in job["documents"]} == {"cancelled"}
    assert job["progress"] == {"done": 3, "total": 3, "pages_done": 0}
    problem(api.delete(location), 409, "job-finished")
    api.app.state.services.queue.start()
    wait_for(lambda: receiver.bodies)
    assert receiver.bodies[0]["status"] == "cancelled"


def test_bad_job_requests(api: TestClient):
    problem(api.post("/v1/jobs", data={}), 400, "bad-request")
    problem(api.post("/v1/jobs", data={"document_ids": "a" * 64}), 404, "document-not-found")
    problem(api.post("/v1/jobs", files=job_files(1), data={"callback_url": "ftp://x/y"}), 400, "bad-request")
    problem(api.post("/v1/jobs", files=job_files(1), data={"callback_url": "not a url"}), 400, "bad-request")
    problem(api.post("/v1/jobs?model=mdl_0123456789abcdef", files=job_files(1)), 404, "model-not-found")
    problem(
        api.post("/v1/jobs", files=[("files", ("a.gif", b"GIF89a...", "image/gif"))]),
        415,
        "unsupported-format",
    )
    problem(api.get("/v1/jobs/job_" + "0" * 32), 404, "job-not-found")
    problem(api.delete("/v1/jobs/job_" + "0" * 32), 404, "job-not-found")
    problem(api.get("/v1/jobs/whatever"), 404, "job-not-found")


def test_job_options_apply_to_every_document(api: TestClient):
    response = api.post("/v1/jobs?pages=2", files=job_files(1))
    job = wait_for_job(api, response.headers["location"])
    assert job["status"] == "failed" and "page 2 is not in the document" in job["documents"][0]["error"]


def test_callbacks_to_internal_addresses_are_refused_by_default(api: TestClient, receiver: CallbackReceiver):
    for url in (receiver.url, "http://localhost:9/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
                "http://[::1]:8080/x", "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x"):  # fmt: skip
        body = problem(api.post("/v1/jobs", files=job_files(1), data={"callback_url": url}), 400,
                       "callback-url-refused")  # fmt: skip
        assert "DOCEXTRACT_ALLOW_PRIVATE_CALLBACKS" in body["detail"]
    problem(
        api.post("/v1/jobs", files=job_files(1), data={"callback_url": "http://no-such-host.invalid/x"}),
        400,
        "callback-url-refused",
    )
    assert api.app.state.services.store.counts("job_documents") == {}  # no job was created
    assert not receiver.bodies


def queued_jobs(api: TestClient, count: int) -> list[str]:
    """Ids of `count` new one-document jobs, oldest first; the queue is stopped, so they stay queued."""
    api.app.state.services.queue.stop()
    return [api.post("/v1/jobs", files=job_files(1, start=100 + n)).json()["id"] for n in range(count)]


def listed(api: TestClient, **params: object) -> list[str]:
    response = api.get("/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


def test_jobs_are_listed_newest_first_as_summaries(api: TestClient):
    finished = wait_for_job(api, api.post("/v1/jobs", files=job_files(2)).headers["location"])
    ids = [finished["id"], *queued_jobs(api, 3)]
    api.delete(f"/v1/jobs/{ids[2]}")
    listing = api.get("/v1/jobs").json()
    assert [job["id"] for job in listing["jobs"]] == ids[::-1]  # same-second jobs too
    assert (listing["total"], listing["limit"], listing["offset"]) == (4, 100, 0)
    for summary in listing["jobs"]:
        full = api.get(f"/v1/jobs/{summary['id']}").json()
        assert "documents" not in summary
        assert summary == {name: value for name, value in full.items() if name != "documents"}
    statuses = {job["id"]: (job["status"], job["progress"]) for job in listing["jobs"]}
    assert statuses[ids[0]] == ("succeeded", {"done": 2, "total": 2, "pages_done": 2})
    assert statuses[ids[1]] == ("queued", {"done": 0, "total": 1, "pages_done": 0})
    assert statuses[ids[2]] == ("cancelled", {"done": 1, "total": 1, "pages_done": 0})


def test_job_pages_hold_every_job_once(api: TestClient):
    ids = queued_jobs(api, 7)
    pages = [api.get("/v1/jobs", params={"limit": 3, "offset": offset}).json() for offset in (0, 3, 6, 9)]
    assert [len(page["jobs"]) for page in pages] == [3, 3, 1, 0]
    assert {page["total"] for page in pages} == {7}
    assert [(page["limit"], page["offset"]) for page in pages] == [(3, 0), (3, 3), (3, 6), (3, 9)]
    assert [job["id"] for page in pages for job in page["jobs"]] == ids[::-1]


def test_job_cursor_pages_with_a_status_filter(api: TestClient):
    ids = queued_jobs(api, 5)
    assert api.delete(f"/v1/jobs/{ids[3]}").status_code == 200
    first = api.get("/v1/jobs", params={"limit": 2, "status": "queued"}).json()
    new = queued_jobs(api, 1)  # created between the two requests: not on the later pages
    after = {"limit": 2, "status": "queued", "after": first["next_cursor"]}
    second = api.get("/v1/jobs", params=after).json()
    assert [job["id"] for page in (first, second) for job in page["jobs"]] == [ids[4], ids[2], ids[1], ids[0]]
    assert second["next_cursor"] is None and second["total"] == 5 + len(new) - 1  # nothing follows


def test_jobs_filtered_by_status(api: TestClient):
    ids = queued_jobs(api, 5)
    for job_id in (ids[0], ids[3]):
        assert api.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert listed(api, status="cancelled") == [ids[3], ids[0]]
    assert listed(api, status="queued") == [ids[4], ids[2], ids[1]]
    assert listed(api, status="queued", limit=2, offset=1) == [ids[2], ids[1]]
    assert api.get("/v1/jobs", params={"status": "queued", "limit": 1}).json()["total"] == 3
    empty = api.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert (empty["jobs"], empty["total"]) == ([], 0)
    assert listed(api) == ids[::-1]


def test_bad_job_list_requests(api: TestClient):
    body = problem(api.get("/v1/jobs", params={"status": "done"}), 422, "validation-error")
    assert [error["loc"] for error in body["errors"]] == [["query", "status"]]
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"offset": 2**70}, {"status": ""}):
        problem(api.get("/v1/jobs", params=params), 422, "validation-error")
    assert listed(api, offset=2**62) == []


@pytest.mark.parametrize(
    "job_id", ["whatever", "job_" + "0" * 31, "JOB_" + "0" * 32, "job_" + "0" * 32 + "%0A"]
)
def test_a_malformed_job_id_is_not_found(api: TestClient, job_id: str):
    """Whatever its form, an id that names no job is a 404 (never a 422)."""
    assert api.post("/v1/jobs", files=job_files(1)).status_code == 202
    problem(api.get(f"/v1/jobs/{job_id}"), 404, "job-not-found")
    problem(api.delete(f"/v1/jobs/{job_id}"), 404, "job-not-found")
