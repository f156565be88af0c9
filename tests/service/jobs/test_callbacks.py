"""The callback SSRF guard: which addresses count as public, URL checks, and the check at send time."""

import hashlib
import hmac
import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.deps import build_services
from service.errors import BadRequestError, CallbackUrlRefusedError
from service.jobs.callbacks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    callback_targets,
    check_callback_url,
    is_public,
    resolve,
    signature_headers,
    verify_signature,
)
from service.settings import Settings
from tests.service.api.routes.test_jobs import CallbackReceiver
from tests.service.support import free_port, wait_for


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::",
     # 127.0.0.1 and 169.254.169.254 inside NAT64, 6to4 and Teredo addresses
     "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe", "2002:7f00:1::", "2002:a9fe:a9fe::1",
     "2001:0:4136:e378:8000:63bf:80ff:fffe"],
)  # fmt: skip
def test_internal_addresses_are_not_public(address: str):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_routable_addresses_are_public(address: str):
    assert is_public(ipaddress.ip_address(address))


def test_names_resolve_and_bad_names_are_refused():
    assert ipaddress.ip_address("127.0.0.1") in resolve("localhost")
    with pytest.raises(CallbackUrlRefusedError, match="does not resolve"):
        resolve("no-such-host.invalid")


def test_urls_are_checked_unless_private_callbacks_are_allowed():
    assert (
        check_callback_url("https://93.184.216.34/hook", allow_private=False) == "https://93.184.216.34/hook"
    )
    with pytest.raises(CallbackUrlRefusedError, match="non-public address"):
        check_callback_url("http://localhost:8000/hook", allow_private=False)
    assert check_callback_url("http://localhost:8000/hook", allow_private=True)
    for url in ("ftp://93.184.216.34/x", "/relative", "http://[::1"):
        with pytest.raises(BadRequestError):
            check_callback_url(url, allow_private=True)


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536", "123456789012345678901234567890"])
def test_urls_with_an_impossible_port_are_refused_when_posted(port: str):
    """Refused at submission (400), private callbacks allowed or not, instead of failing at send time."""
    for allow_private in (False, True):
        with pytest.raises(BadRequestError, match="port"):
            check_callback_url(f"http://93.184.216.34:{port}/hook", allow_private=allow_private)
    assert check_callback_url("http://93.184.216.34:65535/hook", allow_private=False)


def test_the_address_is_checked_again_when_the_callback_is_sent(tmp_path):
    """A job stored with a loopback callback (allowed then, or a name that resolved elsewhere then) is not
    called back by a worker whose settings refuse it: the callback ends `failed`, nothing is sent."""
    receiver = CallbackReceiver()
    try:
        services = build_services(Settings(data_dir=tmp_path / "data"))
        services.store.create_job("job_" + "1" * 32, [], {}, receiver.url)
        services.worker.send_callback("job_" + "1" * 32)
        assert services.store.get_job("job_" + "1" * 32)["callback_state"] == "failed"
        assert receiver.bodies == []
        allowed = build_services(Settings(data_dir=tmp_path / "data", allow_private_callbacks=True))
        allowed.store.create_job("job_" + "2" * 32, [], {}, receiver.url)
        allowed.worker.send_callback("job_" + "2" * 32)
        assert [body["id"] for body in receiver.bodies] == ["job_" + "2" * 32]
    finally:
        receiver.server.shutdown()


def fake_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """`socket.getaddrinfo` answering each name in `answers` with its addresses, in order (other hosts, the
    literal addresses a client connects to among them, as before)."""
    real_getaddrinfo = socket.getaddrinfo
    family = {4: socket.AF_INET, 6: socket.AF_INET6}

    def fake_getaddrinfo(host: str, *args: object, **kwargs: object) -> list:
        if host not in answers:
            return real_getaddrinfo(host, *args, **kwargs)
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, 0))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


def test_a_callback_goes_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch):
    fake_resolver(monkeypatch, {"hooks.example.com": ["93.184.216.34"], "rebind.example.com": ["10.0.0.7"]})
    (target,) = callback_targets("https://hooks.example.com:8443/cb?job=1", allow_private=False)
    assert target.url == "https://93.184.216.34:8443/cb?job=1"
    assert target.headers == {"Host": "hooks.example.com:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.com"}  # the certificate is checked against it
    (plain,) = callback_targets("http://hooks.example.com/cb", allow_private=False)
    assert (plain.url, plain.headers, plain.extensions) == (
        "http://93.184.216.34/cb",
        {"Host": "hooks.example.com"},
        {},
    )
    with pytest.raises(CallbackUrlRefusedError):
        callback_targets("https://rebind.example.com/cb", allow_private=False)
    (private,) = callback_targets("https://rebind.example.com/cb", allow_private=True)
    assert private.url == "https://10.0.0.7/cb"


def test_every_checked_address_is_a_target_ipv4_first_and_one_bad_address_refuses_all(
    monkeypatch: pytest.MonkeyPatch,
):
    fake_resolver(
        monkeypatch,
        {
            "multi.example.com": ["2606:4700:4700::1111", "93.184.216.34", "8.8.8.8", "93.184.216.34"],
            "mixed.example.com": ["93.184.216.34", "10.0.0.7"],
        },
    )
    targets = callback_targets("http://multi.example.com/cb", allow_private=False)
    assert [t.url for t in targets] == [
        "http://93.184.216.34/cb",
        "http://8.8.8.8/cb",
        "http://[2606:4700:4700::1111]/cb",
    ]
    assert all(t.headers == {"Host": "multi.example.com"} for t in targets)
    with pytest.raises(CallbackUrlRefusedError, match=r"10\.0\.0\.7"):
        callback_targets("http://mixed.example.com/cb", allow_private=False)


def test_a_pinned_callback_reaches_the_receiver_with_its_host_header(tmp_path):
    receiver = CallbackReceiver()
    try:
        port = receiver.server.server_address[1]
        services = build_services(Settings(data_dir=tmp_path / "data", allow_private_callbacks=True))
        services.store.create_job("job_" + "3" * 32, [], {}, f"http://localhost:{port}/hook")
        services.worker.send_callback("job_" + "3" * 32)
        assert [body["id"] for body in receiver.bodies] == ["job_" + "3" * 32]
        assert receiver.hosts == [f"localhost:{port}"]
    finally:
        receiver.server.shutdown()


def test_a_callback_falls_back_to_the_next_address_when_one_refuses_connections(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """The name's first address has nothing listening (the receiver listens on 127.0.0.1 only): the same
    attempt goes on to the second address, and the receiver gets the job once."""
    receiver = CallbackReceiver()
    try:
        port = receiver.server.server_address[1]
        fake_resolver(monkeypatch, {"hooks.test": ["127.0.0.2", "127.0.0.1"]})
        services = build_services(Settings(data_dir=tmp_path / "data", allow_private_callbacks=True))
        job_id = "job_" + "4" * 32
        services.store.create_job(job_id, [], {}, f"http://hooks.test:{port}/hook")
        started = time.monotonic()
        services.worker.send_callback(job_id)
        assert services.store.get_job(job_id)["callback_state"] == "sent"
        assert [body["id"] for body in receiver.bodies] == [job_id]
        assert receiver.hosts == [f"hooks.test:{port}"]
        assert time.monotonic() - started < 1.0  # no retry delay: one attempt reached the second address
    finally:
        receiver.server.shutdown()


SECRET = "whsec-test"
BODY = b'{"id":"job_1","status":"succeeded"}'


def test_a_signature_is_an_hmac_of_the_timestamp_and_the_exact_body():
    headers = signature_headers(SECRET, BODY, now=1_700_000_000.9)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: f"v1={expected}"}
    assert signature_headers(None, BODY, now=1_700_000_000) == {}
    assert signature_headers("", BODY, now=1_700_000_000) == {}


def test_verification_fails_for_a_tampered_body_an_old_timestamp_or_another_secret():
    headers = signature_headers(SECRET, BODY, now=1_700_000_000)
    timestamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, timestamp, BODY, signature, now=1_700_000_000)
    assert verify_signature(SECRET, timestamp, BODY, signature, now=1_700_000_300)  # at the tolerance
    assert not verify_signature(SECRET, timestamp, BODY, signature, now=1_700_000_301)  # older than it
    assert not verify_signature(SECRET, timestamp, BODY, signature, now=1_699_999_699)  # from the future
    assert verify_signature(SECRET, timestamp, BODY, signature, now=1_700_000_500, tolerance_s=600)
    assert not verify_signature(SECRET, timestamp, BODY + b" ", signature, now=1_700_000_000)
    assert not verify_signature(SECRET, timestamp, BODY.replace(b"succeeded", b"failed"), signature, now=1e9)
    assert not verify_signature("other", timestamp, BODY, signature, now=1_700_000_000)
    assert not verify_signature(SECRET, "1700000001", BODY, signature, now=1_700_000_000)  # other timestamp
    assert not verify_signature(SECRET, "soon", BODY, signature, now=1_700_000_000)
    assert not verify_signature(SECRET, timestamp, BODY, signature.replace("v1=", "v0="), now=1_700_000_000)
    assert verify_signature(SECRET, timestamp, BODY, f"v0=ab, {signature}", now=1_700_000_000)


def readme_python(marker: str) -> str:
    """The README's one Python block that contains `marker`."""
    text = (Path(__file__).parents[3] / "README.md").read_text()
    (block,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if marker in block]
    return block


def readme_verifier() -> dict[str, object]:
    """The verification snippet of the README (`verify_callback.py`), run."""
    namespace: dict[str, object] = {}
    exec(compile(readme_python("def verify("), "README.md", "exec"), namespace)
    return namespace


def test_the_readme_verification_code_agrees_with_the_service(tmp_path):
    verify = readme_verifier()["verify"]
    receiver = CallbackReceiver()
    try:
        settings = Settings(data_dir=tmp_path / "data", allow_private_callbacks=True, callback_secret=SECRET)
        services = build_services(settings)
        services.store.create_job("job_" + "4" * 32, [], {}, receiver.url)
        services.worker.send_callback("job_" + "4" * 32)
    finally:
        receiver.server.shutdown()
    headers, body = receiver.raw[0]
    assert verify(SECRET.encode(), headers, body)  # type: ignore[operator]
    assert verify_signature(
        SECRET, headers["x-docextract-timestamp"], body, headers["x-docextract-signature"], time.time()
    )
    assert not verify(SECRET.encode(), headers, body.replace(b"job_4", b"job_5"))  # type: ignore[operator]
    old = {**headers, "x-docextract-timestamp": str(int(headers["x-docextract-timestamp"]) - 301)}
    assert not verify(SECRET.encode(), old, body)  # type: ignore[operator]


def test_the_readme_receiver_gets_and_verifies_a_signed_callback(tmp_path):
    """`verify_callback.py` and `receiver.py` as the README shows them (on a free port instead of 9000),
    called back by a worker whose secret is the receiver's: it answers 204 (signed), so the callback is
    `sent`; a request signed with another secret gets 401 and is printed NOT SIGNED."""
    port = free_port()
    (tmp_path / "verify_callback.py").write_text(readme_python("def verify("))
    (tmp_path / "receiver.py").write_text(readme_python("HTTPServer(").replace("9000", str(port)))
    env = {**os.environ, "DOCEXTRACT_CALLBACK_SECRET": SECRET, "PYTHONPATH": str(tmp_path)}
    log = tmp_path / "receiver.log"
    with log.open("w") as out:
        receiver = subprocess.Popen([sys.executable, "receiver.py"], cwd=tmp_path, env=env, stdout=out)
    try:
        wait_for(lambda: accepts_connections(port), timeout=30)
        settings = Settings(data_dir=tmp_path / "data", allow_private_callbacks=True, callback_secret=SECRET)
        services = build_services(settings)
        services.store.create_job("job_" + "4" * 32, [], {}, f"http://127.0.0.1:{port}/done")
        services.worker.send_callback("job_" + "4" * 32)
        assert services.store.get_job("job_" + "4" * 32)["callback_state"] == "sent"
        forged = signature_headers("not the receiver's secret", BODY, time.time())
        assert httpx.post(f"http://127.0.0.1:{port}/done", content=BODY, headers=forged).status_code == 401
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    lines = log.read_text().splitlines()
    assert lines[0].startswith('signed {"id":"job_4444') and lines[1].startswith("NOT SIGNED")


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
