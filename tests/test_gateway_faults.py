"""Faults of the gateway found on the way (issue 12, parts 5 and 8), each a row on the stack
`make run` started: gunicorn's own refusals as a client receives them on a raw socket, a
readiness check after the broker dropped the gateway's idle connection, a token signed for
nobody, and a worker killed mid-upload (on a gateway of the test's own)."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from conftest import GATEWAY_URL, login
from gateway_process import GatewayProcess, dev_env
from pymongo import MongoClient

from mp3testing import close_connections, delete_queues, wait_until
from mp3testing.media import make_clip

pytestmark = pytest.mark.stack

GATEWAY = urlsplit(GATEWAY_URL)
MiB = 1024 * 1024


def exchange(data: bytes, port: int | None = None) -> tuple[str, dict[str, str], bytes]:
    """Send raw bytes to the gateway, read until it closes: (status line, headers, body)."""
    with socket.create_connection((GATEWAY.hostname, port or GATEWAY.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)}
    return status, headers, body


def request_with(*, target: bytes = b"/healthz", headers: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: gateway\r\n" + headers + b"\r\n"


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        pytest.param(
            request_with(headers=b"X-Big: " + b"a" * 9000 + b"\r\n"),
            "431 Request Header Fields Too Large",
            "request_header_fields_too_large",
            id="a header over limit_request_field_size",
        ),
        pytest.param(
            request_with(headers=b"".join(b"X-%d: y\r\n" % n for n in range(120))),
            "431 Request Header Fields Too Large",
            "request_header_fields_too_large",
            id="more headers than limit_request_fields",
        ),
        pytest.param(
            request_with(target=b"/jobs?page=" + b"9" * 5000),
            "414 URI Too Long",
            "uri_too_long",
            id="a request line over limit_request_line",
        ),
        pytest.param(
            request_with(headers=b"Bad Header: x\r\n"),
            "400 Bad Request",
            "bad_request",
            id="a space in a header name",
        ),
        pytest.param(b"NONSENSE\r\n\r\n", "400 Bad Request", "bad_request", id="no request line"),
    ],
)
def test_gunicorns_own_refusals_are_json(data, status, error):
    line, headers, body = exchange(data)
    assert line == f"HTTP/1.1 {status}"
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    answer = json.loads(body)
    assert answer["error"] == error and answer["message"]


def test_readiness_after_the_broker_dropped_the_idle_connection():
    """The broker closes an idle worker's connection (missed heartbeats, ~60 s): the next
    /readyz used to find the dead connection and answer 503 with the broker healthy.
    Closing the connections from the broker's side is the same event, without the wait."""
    answers = []
    for _ in range(3):
        for _ in range(4):  # so that each worker has its connection
            assert requests.get(f"{GATEWAY_URL}/readyz", timeout=15).status_code == 200
        # The management API lists a new connection within its statistics interval.
        assert wait_until(lambda: close_connections("gateway", prefix=True), timeout=20)
        time.sleep(0.3)  # the broker's close reaches the workers' sockets
        answers += [requests.get(f"{GATEWAY_URL}/readyz", timeout=15).status_code]
        answers += [requests.get(f"{GATEWAY_URL}/readyz", timeout=15).status_code]
    assert answers == [200] * 6


@pytest.mark.parametrize("subject", ["", " "])
def test_a_validly_signed_token_for_nobody_is_401(subject):
    """Auth's signature on it, every claim there, a subject naming nobody: 401, not 503."""
    now = int(time.time())
    token = jwt.encode(
        {"sub": subject, "iat": now, "exp": now + 600}, dev_env()["JWT_SECRET"], algorithm="HS256"
    )
    for path in ("/jobs", "/status?fid=6745a1b2c3d4e5f6a7b8c9d0"):
        answer = requests.get(
            f"{GATEWAY_URL}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    ("method", "path", "authorization"),
    [
        ("POST", "/login", "Basic ééé"),
        ("POST", "/login", "Basic " + "w6k=" * 3),  # base64 of bytes that are not UTF-8
        ("GET", "/jobs", "Bearer ééé"),
    ],
)
def test_unreadable_credentials_are_a_json_refusal_not_a_500(method, path, authorization):
    answer = requests.request(
        method,
        f"{GATEWAY_URL}{path}",
        headers={"Authorization": authorization.encode("utf-8")},
        timeout=10,
    )
    # 401; or 503 while auth itself fails on them (its own 500, not passed through).
    assert answer.status_code in (401, 503), answer.text
    assert answer.json()["error"]


@pytest.fixture
def own_gateway(tmp_path):
    """A one-worker gateway of the test's own database and queue, whose outbox relay and
    orphan sweep run every second, taking an upload silent for 3 s for an abandoned one."""
    database, queue = f"mp3test_{uuid.uuid4().hex[:12]}", f"test.orphans.{uuid.uuid4().hex[:8]}"
    with GatewayProcess(
        tmp_path / "gateway.log",
        MONGODB_DB=database,
        VIDEO_QUEUE=queue,
        OUTBOX_RELAY_INTERVAL_SECONDS="1",
        ORPHAN_UPLOAD_AGE_SECONDS="3",
    ) as gateway:
        gateway.database = MongoClient(dev_env()["MONGODB_URI"])[database]
        yield gateway
    gateway.database.client.drop_database(database)
    gateway.database.client.close()
    delete_queues(queue)


def test_a_worker_killed_mid_upload_leaves_no_chunks(own_gateway, new_user, tmp_path):
    """Measured before: 8 MiB of chunks still there 7 minutes later, forever."""
    token = login(own_gateway.url, *new_user())
    wav = make_clip(tmp_path / "long.wav", 60, video=False, args=["-ac", "2"]).read_bytes()
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunks = own_gateway.database["videos.chunks"]
    with socket.create_connection(("127.0.0.1", own_gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: gateway\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
            + f"Content-Length: {len(head) + len(wav) + len(tail)}\r\n\r\n".encode()
            + head
            + wav[: 9 * MiB]  # most of it; the rest never comes
        )
        assert wait_until(lambda: chunks.count_documents({}) >= 8, timeout=30)
        (worker,) = own_gateway.workers()
        os.kill(worker, signal.SIGKILL)  # as the kernel's OOM killer does
        stored = chunks.count_documents({})
        assert wait_until(lambda: own_gateway.workers() not in ([], [worker]), timeout=30)
    assert stored >= 8 and own_gateway.database["videos.files"].count_documents({}) == 0
    assert wait_until(lambda: chunks.count_documents({}) == 0, timeout=30, interval=0.5)
    assert own_gateway.database["videos.uploading"].count_documents({}) == 0
    assert own_gateway.database["jobs"].count_documents({}) == 0
