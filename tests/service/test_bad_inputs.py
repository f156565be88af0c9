"""A corpus of bad inputs, generated here, against the real app (real pipeline, poppler, tesseract, model).

Every case must be answered with its 4xx problem document (a stable `type`), never a 5xx, and the service
must still be ready afterwards. The cases: empty, truncated and corrupt files of each format, wrong magic
bytes, an encrypted PDF, a 5,000-page PDF, a 30000x30000 PNG (header only), zip slip and zip bombs for
training, malformed JSON pages and annotations, boxes outside the page, unicode and very long file names,
huge form fields and too many parts, a callback URL with an impossible port; and the broken variants of
every container format that `tests.fixtures.broken` generates (page-tree loops, IFD chains and cycles,
oversized ancillary chunks, corrupt compressed zip members, ...), each sent every way a document comes in.
"""

import base64
import hashlib
import io
import json
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.main import create_app
from service.settings import Settings
from tests.fixtures import broken
from tests.fixtures.fake_pdf import FakePage, make_pdf, text_page
from tests.service.api.routes.test_extract import problem
from tests.service.support import job_files, wait_for, words_document

Send = Callable[[TestClient], httpx.Response]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, serving_model: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("bad-inputs") / "data",
        default_model_dir=serving_model,
        model_threads=1,
        ocr_workers=1,
        queue_poll_s=0.1,
    )
    with TestClient(create_app(settings)) as test_client:
        wait_for(lambda: test_client.get("/readyz").status_code == 200, 60)
        yield test_client


# Files.


def image_bytes(fmt: str, size: tuple[int, int] = (120, 80)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, "white")
    image.paste((0, 0, 0), (10, 10, 60, 30))
    image.save(buffer, fmt)
    return buffer.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR says `width` x `height` (8-bit grey) with one tiny IDAT: no real pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def corrupt_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 64]) + data[middle + 64 :]


def many_pages_pdf(count: int) -> bytes:
    """A minimal valid PDF of `count` empty pages (one shared /Pages node), built in milliseconds."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(count))
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    ]
    bodies += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * count
    return broken.pdf_of(bodies)


def json_pages(page: dict) -> bytes:
    return json.dumps({"pages": [page]}).encode()


def word_page(box: list[float], width: int = 100, height: int = 100, **extra: object) -> bytes:
    return json_pages({"width": width, "height": height, "words": [{"text": "x", "box": box}], **extra})


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("annotations/a.json")
        info.external_attr = (0o120777 << 16) | 0x20  # a symbolic link to /etc/passwd
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def funsd_zip(annotation: bytes, image: bytes | None = None) -> bytes:
    return zip_of({"annotations/a.json": annotation, "images/a.png": image or image_bytes("PNG", (100, 100))})


def annotation(box: list[int], label: str = "question", linking: list | None = None) -> bytes:
    entity = {"id": 0, "label": label, "text": "x", "box": box, "words": [{"text": "x", "box": box}]}
    return json.dumps({"form": [{**entity, "linking": linking or []}]}).encode()


def json_words(count: int) -> bytes:
    words = [
        {"text": "w", "box": [i % 900, 10 * (i // 900), i % 900 + 5, 10 * (i // 900) + 8]}
        for i in range(count)
    ]
    return json_pages({"width": 1000, "height": 1000, "words": words})


# Requests.


def raw(data: bytes, query: str = "") -> Send:
    return lambda c: c.post(f"/v1/extract{query}", content=data, headers={"content-type": "application/pdf"})


def upload(data: bytes, name: str = "doc.bin", content_type: str = "application/octet-stream") -> Send:
    return lambda c: c.post("/v1/documents", files={"file": (name, data, content_type)})


def extract_upload(data: bytes, name: str) -> Send:
    return lambda c: c.post("/v1/extract", files={"file": (name, data, "application/octet-stream")})


def job(data: bytes, name: str) -> Send:
    return lambda c: c.post("/v1/jobs", files=[("files", (name, data, "application/octet-stream"))])


def dataset(data: bytes) -> Send:
    return lambda c: c.post("/v1/training-runs", files={"dataset": ("d.zip", data, "application/zip")})


@dataclass(frozen=True)
class Case:
    send: Send
    status: int
    kind: str


PNG, JPEG, TIFF = image_bytes("PNG"), image_bytes("JPEG"), image_bytes("TIFF")
PDF = make_pdf([text_page(["Name: Jane Doe", "Date: 2024-01-02"])])
# Uploads to store that look like a supported format but do not load: refused, and nothing is stored.
REFUSED_UPLOADS: dict[str, tuple[bytes, int, str]] = {
    "truncated png": (PNG[: len(PNG) // 2], 422, "corrupt-file"),
    "truncated jpeg": (JPEG[: len(JPEG) * 9 // 10], 422, "corrupt-file"),
    "pdf garbage body": (b"%PDF-1.4\n" + bytes(range(256)) * 16, 422, "corrupt-file"),
    "tiff magic only": (b"II*\x00", 422, "corrupt-file"),
    "png 30000x30000 header": (png_header(30_000, 30_000), 413, "too-many-pixels"),
    "pdf of 5000 pages": (many_pages_pdf(5000), 413, "too-many-pages"),
    "json box outside the page": (word_page([10, 10, 500, 20]), 422, "invalid-pages-json"),
}
BROKEN_AMONG_GOOD = [*job_files(2, start=300), ("files", ("scan.png", PNG[: len(PNG) // 2], "image/png"))]
LONG_NAME = "long-" + "n" * 2_000 + ".json"  # the multipart parser refuses part headers over 4 KiB
UNICODE_NAME = "Formulär 請求書 📄 \u202enoitpircsed.png"
CASES: dict[str, Case] = {
    "empty body": Case(raw(b""), 422, "empty-file"),
    "whitespace body": Case(raw(b" \n\t \r\n"), 422, "empty-file"),
    "png magic only": Case(raw(PNG[:8]), 422, "corrupt-file"),
    "truncated png": Case(raw(PNG[: len(PNG) // 2]), 422, "corrupt-file"),
    "corrupt png data": Case(raw(corrupt_middle(PNG)), 422, "corrupt-file"),
    "png 30000x30000 header": Case(raw(png_header(30_000, 30_000)), 413, "too-many-pixels"),
    "png 7000x7000 header": Case(raw(png_header(7_000, 7_000)), 413, "too-many-pixels"),
    "png zero size header": Case(raw(png_header(0, 0)), 422, "corrupt-file"),
    "jpeg magic only": Case(raw(JPEG[:3]), 422, "corrupt-file"),
    "truncated jpeg": Case(raw(JPEG[: len(JPEG) // 2]), 422, "corrupt-file"),
    "jpeg garbage after header": Case(raw(JPEG[:20] + bytes(range(256)) * 4), 422, "corrupt-file"),
    "tiff magic only": Case(raw(b"II*\x00"), 422, "corrupt-file"),
    "truncated tiff": Case(raw(TIFF[: len(TIFF) // 3]), 422, "corrupt-file"),
    "tiff bad ifd offset": Case(raw(b"II*\x00\xff\xff\xff\x7f" + b"\x00" * 64), 422, "corrupt-file"),
    "bmp huge header": Case(
        raw(b"BM" + b"\x00" * 12 + struct.pack("<IiiHHI", 40, 60_000, 60_000, 1, 24, 0) + b"\x00" * 40),
        413,
        "too-many-pixels",
    ),
    "webp garbage": Case(raw(b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 24), 422, "corrupt-file"),
    "pdf header only": Case(raw(b"%PDF-1.7\n"), 422, "corrupt-file"),
    "truncated pdf": Case(raw(PDF[:60]), 422, "corrupt-file"),
    "pdf garbage body": Case(raw(b"%PDF-1.4\n" + bytes(range(256)) * 16), 422, "corrupt-file"),
    "encrypted pdf": Case(raw(make_pdf([FakePage()], encrypted=True)), 422, "encrypted-pdf"),
    "pdf of 5000 pages": Case(raw(many_pages_pdf(5000)), 413, "too-many-pages"),
    "pdf page beyond the end": Case(raw(PDF, "?pages=2-99999999999999999999"), 422, "invalid-page-selection"),
    "gif (wrong magic)": Case(raw(b"GIF89a" + b"\x00" * 32), 415, "unsupported-format"),
    "zip sent as a document": Case(raw(zip_of({"a.txt": b"hello"})), 415, "unsupported-format"),
    "random bytes": Case(raw(bytes(range(1, 256)) * 8), 415, "unsupported-format"),
    "text named .png": Case(upload(b"hello world", "scan.png", "image/png"), 415, "unsupported-format"),
    "malformed json": Case(raw(b'{"pages": [{"width": 10,'), 422, "invalid-pages-json"),
    "json nested 100000 deep": Case(raw(b"[" * 100_000 + b"]" * 100_000), 422, "invalid-pages-json"),
    "json not an object": Case(raw(b'["pages"]'), 422, "invalid-pages-json"),
    "json box outside the page": Case(raw(word_page([10, 10, 500, 20])), 422, "invalid-pages-json"),
    "json negative box": Case(raw(word_page([-5, 10, 20, 20])), 422, "invalid-pages-json"),
    "json nan box": Case(
        raw(b'{"pages":[{"width":9,"height":9,"words":[{"text":"x","box":[NaN,0,1,1]}]}]}'),
        422,
        "invalid-pages-json",
    ),
    "json zero-width page": Case(raw(word_page([0, 0, 0, 0], width=0)), 422, "invalid-pages-json"),
    "json page of 10^10 pixels": Case(raw(word_page([0, 0, 1, 1], 100_000, 100_000)), 413, "too-many-pixels"),
    "json image not base64": Case(
        raw(word_page([0, 0, 1, 1], image="not base64!")), 422, "invalid-pages-json"
    ),
    "json image is a 30000x30000 png": Case(
        raw(word_page([0, 0, 1, 1], image=base64.b64encode(png_header(30_000, 30_000)).decode())),
        413,
        "too-many-pixels",
    ),
    "json no pages": Case(raw(b'{"pages": []}'), 422, "invalid-pages-json"),
    "json page sides of 4000 digits": Case(
        raw(b'{"pages":[{"width":' + b"9" * 4000 + b',"height":' + b"9" * 4000 + b',"words":[]}]}'),
        422,
        "invalid-pages-json",
    ),
    "json page of 5001 words": Case(raw(json_words(5001)), 413, "too-many-words"),
    "page selection of 5000 digits": Case(raw(PNG, "?pages=1-" + "9" * 5000), 422, "invalid-page-selection"),
    "model id with a path in it": Case(raw(PNG, "?model=mdl_0123456789abcdef/../x"), 422, "validation-error"),
    "ocr language not installed": Case(raw(PNG, "?ocr_lang=xyz"), 422, "unsupported-ocr-language"),
    "job with an ocr language not installed": Case(
        lambda c: c.post("/v1/jobs?ocr_lang=eng%2Bxyz", files=job_files(1)), 422, "unsupported-ocr-language"
    ),
    **{f"stored {name}": Case(upload(data), *problem) for name, (data, *problem) in REFUSED_UPLOADS.items()},
    "job with a truncated png among good files": Case(
        lambda c: c.post("/v1/jobs", files=BROKEN_AMONG_GOOD), 422, "corrupt-file"
    ),
    "unicode file name, corrupt png": Case(extract_upload(PNG[:40], UNICODE_NAME), 422, "corrupt-file"),
    "2000-char file name, gif": Case(job(b"GIF87a" + b"\x00" * 16, LONG_NAME), 415, "unsupported-format"),
    "10000-char file name": Case(upload(PNG, "n" * 10_000 + ".png"), 400, "bad-request"),
    "multipart without the file field": Case(
        lambda c: c.post("/v1/extract", files={"other": ("a.png", PNG)}), 400, "bad-request"
    ),
    "huge form field (2 MiB callback_url)": Case(
        lambda c: c.post(
            "/v1/jobs", files=job_files(1), data={"callback_url": "http://x/" + "a" * (2 << 20)}
        ),
        400,
        "bad-request",
    ),
    "2000 form fields": Case(
        lambda c: c.post("/v1/jobs", files=job_files(1), data={f"field{n}": "x" for n in range(2000)}),
        400,
        "bad-request",
    ),
    "broken multipart body": Case(
        lambda c: c.post(
            "/v1/documents",
            content=b"--nope\r\ngarbage",
            headers={"content-type": "multipart/form-data; boundary=b"},
        ),
        400,
        "bad-request",
    ),
    "not a zip": Case(dataset(b"PK\x03\x04 but not really a zip"), 422, "invalid-dataset"),
    "zip slip": Case(dataset(zip_of({"../../evil.json": b"{}"})), 422, "invalid-dataset"),
    "zip absolute path": Case(dataset(zip_of({"/etc/cron.d/evil": b"x"})), 422, "invalid-dataset"),
    "zip symlink": Case(dataset(symlink_zip()), 422, "invalid-dataset"),
    "zip bomb": Case(dataset(zip_of({"annotations/a.json": b"\x00" * (20 << 20)})), 413, "dataset-too-large"),
    "zip without annotations": Case(dataset(zip_of({"readme.txt": b"hello"})), 422, "invalid-dataset"),
    "malformed json annotation": Case(dataset(funsd_zip(b'{"form": [')), 422, "invalid-dataset"),
    "annotation box outside the image": Case(
        dataset(funsd_zip(annotation([10, 10, 500, 20]))), 422, "invalid-dataset"
    ),
    "annotation with a corrupt image": Case(
        dataset(funsd_zip(annotation([1, 1, 5, 5]), PNG[:30])), 422, "invalid-dataset"
    ),
    "annotation image a decompression bomb": Case(
        dataset(funsd_zip(annotation([1, 1, 5, 5]), png_header(30_000, 30_000))), 422, "invalid-dataset"
    ),
    "annotation image over the pixel limit": Case(
        dataset(funsd_zip(annotation([1, 1, 5, 5]), png_header(7_000, 7_000))), 413, "dataset-too-large"
    ),
    "annotation link of lists": Case(
        dataset(funsd_zip(annotation([1, 1, 5, 5], linking=[[[0], [1]]]))), 422, "invalid-dataset"
    ),
    "annotation nested 5000 deep": Case(
        dataset(
            zip_of(
                {"annotations/a.json": b'{"form":' + b"[" * 5000 + b"]" * 5000 + b"}", "images/a.png": PNG},
                zipfile.ZIP_STORED,
            )
        ),
        422,
        "invalid-dataset",
    ),
    "annotations labelled with bio tags": Case(
        dataset(funsd_zip(annotation([1, 1, 5, 5], label="O"))), 422, "invalid-dataset"
    ),
    "annotations without entities": Case(dataset(funsd_zip(b'{"form": []}')), 422, "invalid-dataset"),
    "job with a callback on port 99999": Case(
        lambda c: c.post(
            "/v1/jobs", files=job_files(1), data={"callback_url": "http://93.184.216.34:99999/"}
        ),
        400,
        "bad-request",
    ),
    **{
        f"{name} ({way})": Case(send(data), status, kind)
        for name, (data, status, kind) in broken.DOCUMENTS.items()
        for way, send in (("extract", raw), ("stored", upload), ("job", lambda data: job(data, "doc.bin")))
    },
    **{name: Case(dataset(data), status, kind) for name, (data, status, kind) in broken.DATASETS.items()},
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_gets_its_problem_document_and_the_service_stays_ready(client: TestClient, name: str):
    case = CASES[name]
    response = case.send(client)
    assert response.status_code < 500, response.text
    body = problem(response, case.status, case.kind)
    assert body["status"] == case.status and body["request_id"] == response.headers["x-request-id"]
    assert client.get("/readyz").status_code == 200


def test_refused_uploads_leave_nothing_stored(client: TestClient):
    store = client.app.state.services.store
    refused = [data for data, _, _ in REFUSED_UPLOADS.values()] + [part[1] for _, part in BROKEN_AMONG_GOOD]
    refused += [data for data, _, _ in broken.DOCUMENTS.values()]
    for name in [
        *(f"stored {name}" for name in REFUSED_UPLOADS),
        "job with a truncated png among good files",
        *(f"{name} ({way})" for name in broken.DOCUMENTS for way in ("stored", "job")),
    ]:
        assert CASES[name].send(client).status_code in (413, 422), name
    for data in refused:
        assert store.get_document(hashlib.sha256(data).hexdigest()) is None


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 25


def test_a_tiff_of_100000_frames_is_refused_without_counting_them(client: TestClient):
    """A 10 MB chain of IFDs: frames are counted only to the page limit (counting all of them took 47 s of a
    core), whichever way the TIFF comes in."""
    chain = broken.tiff(100_000)
    assert len(chain) > 10_000_000
    for send in (raw(chain), upload(chain), job(chain, "chain.tif")):
        started = time.monotonic()
        response = send(client)
        assert time.monotonic() - started < 5.0
        assert "more than 100 pages" in problem(response, 413, "too-many-pages")["detail"]


def test_good_inputs_with_odd_names_still_work(client: TestClient):
    """The companions of the name cases: the same names on good documents are stored as given."""
    for number, name in enumerate((UNICODE_NAME, LONG_NAME)):
        document = words_document(100 + number)
        response = client.post("/v1/documents", files={"file": (name, document, "application/json")})
        assert response.status_code in (200, 201), response.text
        assert response.json()["filename"] == name
    assert client.post("/v1/extract", content=words_document(8)).status_code == 200
