"""Every command of the README's "Using it" examples runs, with the real curl, against a real `docextract
serve`, and every answer is a 2xx: the placeholders become small generated files (form.png, scan.pdf, ...)
and the ids the answers before them gave (ID, JOB_ID, RUN_ID, MODEL_ID, NEXT_CURSOR)."""

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.fixtures.forms import render_form, write_pdf
from tests.service.api.routes.test_training import dataset_zip
from tests.service.conftest import serving_model  # noqa: F401 (the tiny model as the server's default)
from tests.service.support import FINAL, DocextractProcess, free_port, is_ready, wait_for, words_document

README = Path(__file__).resolve().parents[1] / "README.md"
README_BASE = "http://127.0.0.1:8000"
STATUS = "@@http-status="
# Commands of the examples that this test cannot run, each with the reason; keep it to a minimum.
NOT_RUN = {
    "docextract worker": "a distributed worker runs until stopped, on a Redis server the README names "
    "(redis://redis:6379); tests/service/jobs/test_queue.py runs workers on a real redis-server",
    "make serve": "starts the server this test starts itself (with private callbacks allowed and a callback "
    "secret, as the command sets them)",
    "receiver.py": "the README's callback receiver runs as a real process, receives a signed callback and "
    "refuses a forged one in tests/service/jobs/test_callbacks.py",
}
PLACEHOLDER = re.compile(r"\b(JOB_ID|RUN_ID|MODEL_ID|NEXT_CURSOR|ID1|ID2|ID)\b")


def without_comment(command: str) -> str:
    """The command without its trailing `# comment` (which may name placeholders too)."""
    stripped = re.sub(r"\s+#\s.*$", "", command)
    assert shlex.split(stripped) == shlex.split(command, comments=True), command
    return stripped


def readme_commands(text: str) -> list[str]:
    """The commands of the sh blocks under "## Using it", comments dropped; a command whose quotes span
    lines is one command."""
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]
    commands, pending = [], ""
    for line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quotation (or a backslash) continues on the next line
            continue
        commands.append(without_comment(pending))
        pending = ""
    assert not pending, f"unterminated command in the README: {pending}"
    return commands


def test_the_readme_examples_are_found():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 20 and any('"George"' in c and "\n" in c for c in commands)
    not_curl = [c for c in commands if not c.startswith("curl ")]
    assert [next(k for k in NOT_RUN if k in c) for c in not_curl] == list(NOT_RUN)  # each listed, once


class CallbackReceiver(BaseHTTPRequestHandler):
    """Takes a job's callback: 200."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def callback_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", free_port()), CallbackReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/done"
    server.shutdown()
    thread.join(10)


def write_files(folder: Path, synthetic_dataset: Path) -> None:
    """The files the examples name, small and real: forms rendered at 200 dpi (half a letter page)."""
    render_form(10).image.save(folder / "form.png")
    write_pdf([render_form(seed).image for seed in range(11, 16)], folder / "scan.pdf", dpi=200)
    # a.pdf is long enough (12 pages to OCR) that its job is still running when the example cancels it
    write_pdf([render_form(16 + n % 3).image for n in range(12)], folder / "a.pdf", dpi=200)
    render_form(19).image.save(folder / "b.png")
    (folder / "my-forms.zip").write_bytes(dataset_zip(synthetic_dataset))


class Walkthrough:
    """Runs the README's commands in order, with what their answers gave."""

    def __init__(self, base: str, folder: Path, callback_url: str) -> None:
        self.base, self.folder, self.callback_url = base, folder, callback_url
        self.client = httpx.Client(base_url=base, timeout=30)
        self.ids: dict[str, str] = {}
        self.listed_documents: list[str] = []

    def substitute(self, command: str) -> str:
        command = command.replace(README_BASE, self.base)
        command = re.sub(r"callback_url=\S+", f"callback_url={self.callback_url}", command)
        command = re.sub(r"\bepochs=\d+", "epochs=1", command)  # training: one epoch of four forms
        command = re.sub(r"\brecombined_copies=\d+", "recombined_copies=2", command)
        return PLACEHOLDER.sub(lambda match: self.value(match.group(1)), command)

    def value(self, name: str) -> str:
        if name == "MODEL_ID" and name not in self.ids:
            self.ids[name] = self.finished(f"/v1/training-runs/{self.ids['RUN_ID']}", 300)["model_id"]
        if name in ("ID1", "ID2"):
            return self.listed_documents[int(name[-1]) - 1]
        assert name in self.ids, f"no answer before gave {name}"
        return self.ids[name]

    def finished(self, path: str, timeout: float) -> dict[str, Any]:
        item = wait_for(lambda: (body := self.client.get(path).json())["status"] in FINAL and body, timeout)
        assert item["status"] == "succeeded", item
        return item  # type: ignore[no-any-return]

    def remember(self, answer: object) -> None:
        if not isinstance(answer, dict):
            return
        found = str(answer.get("id", ""))
        if found.startswith("job_"):
            self.ids["JOB_ID"] = found
        elif found.startswith("run_"):
            self.ids["RUN_ID"] = found
        elif re.fullmatch(r"[0-9a-f]{64}", found):
            self.ids["ID"] = found
        if answer.get("next_cursor"):
            self.ids["NEXT_CURSOR"] = str(answer["next_cursor"])
        if "documents" in answer and "items" in answer:
            self.listed_documents = [item["id"] for item in answer["items"]]

    def run(self, readme_command: str) -> None:
        if "/v1/documents/" in readme_command and (
            "/result" in readme_command or "overlay.png" in readme_command
        ):
            self.finished(f"/v1/jobs/{self.ids['JOB_ID']}", 120)  # the README says: poll until succeeded
        command = self.substitute(readme_command)
        curl = f"curl() {{ command curl -w '\\n{STATUS}%{{http_code}}\\n' \"$@\"; }}\n"
        done = subprocess.run(
            ["bash", "-c", curl + command], cwd=self.folder, capture_output=True, timeout=300, check=False
        )
        output = done.stdout.decode("utf-8", errors="replace")
        statuses = re.findall(re.escape(STATUS) + r"(\d{3})", output)
        assert done.returncode == 0 and len(statuses) == len(re.findall(r"\bcurl\s", command)), (
            f"{command}\n{output[-2000:]}\n{done.stderr.decode(errors='replace')[-2000:]}"
        )
        assert all(s.startswith("2") for s in statuses), f"{command}\n{statuses}\n{output[-2000:]}"
        with contextlib.suppress(ValueError):  # not JSON: metrics, or a body written to a file
            self.remember(json.loads(output.split(STATUS, 1)[0]))

    def stop_training(self) -> None:
        """Cancel the runs still going, so that the server stops at once."""
        for run in self.client.get("/v1/training-runs", params={"limit": 1000}).json()["items"]:
            if run["status"] in ("queued", "running"):
                self.client.delete(f"/v1/training-runs/{run['id']}")


@pytest.mark.slow
def test_every_readme_example_answers_2xx(
    tmp_path: Path,
    serving_model: Path,  # noqa: F811 (the fixture imported above)
    synthetic_dataset: Path,
    callback_url: str,
):
    assert shutil.which("curl"), "curl is missing: scripts/install.sh installs it (APT_PACKAGES)"
    folder = tmp_path / "work"
    folder.mkdir()
    write_files(folder, synthetic_dataset)
    settings = Settings(
        data_dir=tmp_path / "data",
        default_model_dir=serving_model,
        port=free_port(),
        model_threads=1,
        ocr_workers=1,
        train_threads=1,
        queue_poll_s=0.1,
        allow_private_callbacks=True,  # the callback receiver is on this machine
        callback_secret="change-me",  # as the README's callback example sets it
    )
    base = f"http://127.0.0.1:{settings.port}"
    with DocextractProcess(["serve"], settings, tmp_path / "serve.log") as process:
        wait_for(lambda: is_ready(base), 120, 0.2)
        walk = Walkthrough(base, folder, callback_url)
        for n in range(21):  # a store with more documents than the examples' limit=20 pages through
            stored = walk.client.post("/v1/documents", files={"file": (f"{n}.json", words_document(n))})
            assert stored.status_code == 201, stored.text
        try:
            for command in readme_commands(README.read_text(encoding="utf-8")):
                if not any(key in command for key in NOT_RUN):
                    walk.run(command)
        finally:
            walk.stop_training()
        assert (folder / "page1.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert process.process is not None and process.process.poll() is None, process.output()[-2000:]
