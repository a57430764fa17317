"""Slow clients at a gunicorn-served gateway: cut off, answered, and nothing of theirs kept.

A gateway of this module's own runs the gateway's gunicorn.conf.py (its gevent worker) on
a free port, with a database and a queue of its own and a short body-progress window
(GATEWAY_BODY_WINDOW_SECONDS=2), so that a stalled body is seen in seconds. How fast the
others are answered meanwhile is make bench's (tests/bench/bench_slow_clients.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid

import pytest
import requests
from conftest import AUTH_URL, ROOT, login

from mp3testing import delete_queues
from mp3testing.media import make_clip

pytestmark = pytest.mark.stack  # the stack's auth, MongoDB and RabbitMQ

WINDOW_SECONDS = 2
MIN_BYTES = 64 * 1024
BOUNDARY = "slowclienttest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gateway():
    suffix = uuid.uuid4().hex[:8]
    database, queue = f"mp3test_{suffix}", f"test.slow.{suffix}"
    port = free_port()
    env = {
        **os.environ,
        "AUTH_SVC_ADDRESS": AUTH_URL.removeprefix("http://"),
        "MONGODB_DB": database,
        "VIDEO_QUEUE": queue,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_BODY_WINDOW_SECONDS": str(WINDOW_SECONDS),
        "GATEWAY_BODY_MIN_BYTES": str(MIN_BYTES),
        "OUTBOX_RELAY_INTERVAL_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("METRICS_PORT", None)
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "server:app"],
        cwd=ROOT / "gateway",
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the test's gateway did not become ready"
        time.sleep(0.2)
    from pymongo import MongoClient

    mongo = MongoClient(os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017"))
    try:
        yield {"url": url, "port": port, "db": mongo[database]}
    finally:
        process.terminate()
        process.wait(30)
        mongo.drop_database(database)
        mongo.close()
        delete_queues(queue, f"{queue}.dlq")


@pytest.fixture(scope="module")
def token(gateway):
    from mp3testing.users import new_user

    email, password = new_user()
    return login(gateway["url"], email, password)


def upload_head(port: int, token: str, length: int) -> bytes:
    return (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket, timeout: float = 30) -> tuple[int, dict, bytes]:
    """One HTTP answer on `sock`: status, headers (lower-case names), body."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of the answer"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_a_client_sending_its_headers_too_slowly_is_disconnected(gateway):
    """Headers must be complete within gunicorn's `keepalive` (5 s); these never are."""
    sock = socket.create_connection(("127.0.0.1", gateway["port"]))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
    sock.settimeout(0.5)
    received, deadline = None, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            sock.sendall(b"X-Slow: a\r\n")
            try:
                received = sock.recv(1024)
                break
            except TimeoutError:
                continue
    except (BrokenPipeError, ConnectionResetError):
        received = b""
    finally:
        sock.close()
    assert received == b"", "the server kept waiting for the headers, or answered them"


def test_an_upload_that_stalls_is_answered_408_and_leaves_no_chunks(gateway, token, tmp_path):
    """5 MiB of a real video (past the sniff, chunks written), then nothing."""
    clip = make_clip(tmp_path / "v.mp4", 1, size="64x48", rate=10, audio=True).read_bytes()
    body = clip + os.urandom(5 * 1024 * 1024)
    sock = socket.create_connection(("127.0.0.1", gateway["port"]))
    try:
        sock.sendall(upload_head(gateway["port"], token, 20_000_000) + body)
        status, headers, answer = read_answer(sock)
    finally:
        sock.close()
    assert status == 408, answer
    assert json.loads(answer)["error"] == "request_timeout"
    assert headers["connection"] == "close"
    database = gateway["db"]
    assert database["videos.chunks"].count_documents({}) == 0
    assert database["videos.files"].count_documents({}) == 0
    assert database["jobs"].count_documents({}) == 0


def test_a_slow_but_steady_upload_is_taken_whatever_its_total_time(gateway, token, tmp_path):
    """The floor is on progress: an upload spanning several windows, each above it, is kept."""
    piece = MIN_BYTES // 2  # two pieces a window: twice the floor
    pieces = 12  # sent WINDOW_SECONDS / 4 apart: the upload lasts 2.75 windows at least
    clip = make_clip(tmp_path / "v.mp4", 1, size="64x48", rate=10, audio=True).read_bytes()
    video = clip + os.urandom(pieces * piece - len(clip) - 1024)  # a real video's head
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    request = upload_head(gateway["port"], token, 0)
    part_head = request[request.index(b"\r\n\r\n") + 4 :]
    request = upload_head(gateway["port"], token, len(part_head) + len(video) + len(tail))
    head, body = request[: -len(part_head)], part_head + video + tail
    sock = socket.create_connection(("127.0.0.1", gateway["port"]))
    try:
        sock.sendall(head)
        for start in range(0, len(body), piece):
            if start:
                time.sleep(WINDOW_SECONDS / 4)
            sock.sendall(body[start : start + piece])
        status, _, answer = read_answer(sock)
    finally:
        sock.close()
    assert len(body) > (pieces - 1) * piece
    assert status == 202, answer
    assert json.loads(answer)["size"] == len(video)


def test_a_body_nobody_reads_is_not_waited_for(gateway):
    """/login does not read a body: the rest of it is drained for `keepalive` at most."""
    sock = socket.create_connection(("127.0.0.1", gateway["port"]))
    try:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 100
        )
        sock.settimeout(30)
        status, _, _ = read_answer(sock)
        closed = sock.recv(65536)
    finally:
        sock.close()
    assert status == 401
    assert closed == b"", "the connection was kept waiting for the rest of the body"
