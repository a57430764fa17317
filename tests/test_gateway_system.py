"""The gateway as `make run` runs it (gunicorn on 8080), driven from outside with real curl.

A converter may be running too, so a job is asserted "queued or later" here; the exact
message on the queue is checked by gateway/tests, with a queue of their own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import imageio_ffmpeg
import pytest
from conftest import GATEWAY_URL, login
from pymongo import MongoClient

from mp3testing import close_connections, wait_until

pytestmark = pytest.mark.stack  # drives the stack make run started

MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
MONGODB_DB = os.environ.get("MONGODB_DB", "mp3converter")
GATEWAY = urlsplit(GATEWAY_URL).netloc
# The reference README's host, mapped to the local gateway without editing /etc/hosts.
CONNECT_TO = ["--connect-to", f"mp3converter.com:80:{GATEWAY}"]
SITE = "http://mp3converter.com"
QUEUED_OR_LATER = {"queued", "converting", "done", "failed"}
MiB = 1024 * 1024


def ffmpeg(output: Path, *args: str) -> Path:
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
        + [*args, str(output)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return output


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A folder with video.mp4 (2 s, with sound), empty.mp4 and notes.mp4 (text)."""
    folder = tmp_path_factory.mktemp("media")
    ffmpeg(
        folder / "video.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10"),
        *("-f", "lavfi", "-i", "sine=frequency=440", "-t", "2"),
        *("-c:v", "mpeg4", "-c:a", "aac", "-shortest"),
    )
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("not a video, whatever the name says\n" * 20)
    return folder


def curl_in(folder: Path, *args: str) -> tuple[int, str]:
    """Real curl, run in `folder` (so -F file=@name works as in the README): (status, body)."""
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args, *CONNECT_TO],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def bearer(token: str) -> list[str]:
    return ["-H", f"Authorization: Bearer {token}"]


@pytest.fixture
def user(new_user) -> tuple[str, str]:
    """A fresh user: (email, token)."""
    email, password = new_user("gateway")
    return email, login(GATEWAY_URL, email, password)


def upload(media: Path, token: str, *form: str) -> tuple[int, dict]:
    form = form or ("file=@video.mp4",)
    fields = [arg for item in form for arg in ("-F", item)]
    status, body = curl_in(media, "-X", "POST", *bearer(token), *fields, f"{SITE}/upload")
    return status, json.loads(body)


def test_the_reference_curl_flow_login_upload_queued(media):
    # The README's commands as written, with the seeded development user.
    status, token = curl_in(
        media, "-X", "POST", "-u", "assylbek@email.com:Admin123", f"{SITE}/login"
    )
    assert status == 200 and token.count(".") == 2
    status, body = curl_in(
        media, "-X", "POST", *bearer(token), "-F", "file=@video.mp4", f"{SITE}/upload"
    )
    assert status == 202, body
    job = json.loads(body)
    assert job["state"] == "queued" and job["filename"] == "video.mp4"

    status, body = curl_in(media, *bearer(token), f"{SITE}/status?fid={job['fid']}")
    assert status == 200
    assert json.loads(body)["state"] in QUEUED_OR_LATER
    # Download answers at once: the MP3, or 409 with the state until it is converted.
    status, body = curl_in(
        media, *bearer(token), f"{SITE}/download?fid={job['fid']}", "-o", "output.mp3"
    )
    assert status in (200, 409)


@pytest.mark.parametrize(
    ("token", "form", "status", "error"),
    [
        ("none", ["file=@video.mp4"], 401, "missing_token"),
        ("garbage", ["file=@video.mp4"], 401, "invalid_token"),
        ("good", ["title=my clip"], 400, "missing_file"),
        ("good", ["video=@video.mp4"], 400, "unexpected_file"),
        ("good", ["file=@video.mp4", "file=@video.mp4"], 400, "too_many_files"),
        ("good", ["file=@empty.mp4"], 400, "empty_file"),
        ("good", ["file=@notes.mp4"], 415, "unsupported_media_type"),
    ],
    ids=["no-token", "bad-token", "no-file", "wrong-field", "two-files", "empty", "not-video"],
)
def test_refusals_through_gunicorn(media, user, token, form, status, error):
    email, good = user
    headers = {"none": [], "garbage": bearer("not.a.jwt"), "good": bearer(good)}[token]
    fields = [arg for item in form for arg in ("-F", item)]
    got, body = curl_in(media, "-X", "POST", *headers, *fields, f"{SITE}/upload")
    assert got == status, body
    assert json.loads(body)["error"] == error
    if token == "good":
        assert _jobs(good)["total"] == 0


def _jobs(token: str) -> dict:
    status, body = curl_in(Path.cwd(), *bearer(token), f"{SITE}/jobs")
    assert status == 200
    return json.loads(body)


def _connect() -> socket.socket:
    host, _, port = GATEWAY.partition(":")
    return socket.create_connection((host, int(port or 80)), timeout=30)


def _raw_request(head: bytes) -> str:
    """Send a request head; the answer, read until the server closes."""
    with _connect() as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


def _upload_head(token: str, length: int) -> bytes:
    return (
        f"POST /upload HTTP/1.1\r\nHost: mp3converter.com\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def test_a_declared_3_gib_upload_is_413_before_any_byte_is_read(user):
    _, token = user
    answer = _raw_request(_upload_head(token, 3 * 1024**3))
    assert answer.startswith("HTTP/1.1 413")
    assert json.loads(answer.split("\r\n\r\n", 1)[1])["error"] == "file_too_large"


def _orphan_chunk_owners(database) -> set:
    """files_id of video chunks without a files document (an upload in progress, or lost)."""
    with_chunks = set(database["videos.chunks"].distinct("files_id"))
    with_files = {doc["_id"] for doc in database["videos.files"].find({}, {"_id": 1})}
    return with_chunks - with_files


def _wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_a_client_hanging_up_mid_upload_leaves_nothing(media, user):
    _, token = user
    database = MongoClient(MONGODB_URI, serverSelectionTimeoutMS=5000)[MONGODB_DB]
    before = _orphan_chunk_owners(database)
    start = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="cut.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n" + (media / "video.mp4").read_bytes()
    )
    with _connect() as sock:
        sock.sendall(_upload_head(token, 64 * MiB) + start)
        for _ in range(12):
            sock.sendall(b"\0" * MiB)
        # Chunks without a file document: the upload is streaming into GridFS right now.
        partial = _wait_for(lambda: _orphan_chunk_owners(database) - before)
        assert partial
    assert _wait_for(lambda: not partial & _orphan_chunk_owners(database))
    assert _jobs(token)["total"] == 0


def test_another_users_fid_is_404_for_status_and_download(media, user, new_user):
    _, alice = user
    status, job = upload(media, alice)
    assert status == 202
    email, password = new_user("bob")
    bob = login(GATEWAY_URL, email, password)
    for path in ("status", "download"):
        got, body = curl_in(media, *bearer(bob), f"{SITE}/{path}?fid={job['fid']}")
        assert got == 404
        assert json.loads(body)["error"] == "not_found"
    got, body = curl_in(media, *bearer(alice), f"{SITE}/status?fid={job['fid']}")
    assert got == 200 and json.loads(body)["state"] in QUEUED_OR_LATER


def test_upload_works_after_the_broker_closed_the_gateways_connections(media, user):
    _, token = user
    for _ in range(4):  # both workers have published, so both hold a connection
        assert upload(media, token)[0] == 202
    # The management API lists connections lazily; both workers' connections must go.
    assert wait_until(lambda: close_connections("gateway ", prefix=True), timeout=15, interval=0.5)
    time.sleep(0.5)
    for _ in range(4):
        status, job = upload(media, token)
        assert status == 202, job
    assert _jobs(token)["total"] == 8


def test_range_download_once_converted(media, user):
    _, token = user
    status, job = upload(media, token)
    assert status == 202
    deadline = time.monotonic() + 90
    state = "queued"
    while state in ("queued", "converting") and time.monotonic() < deadline:
        time.sleep(0.5)
        state = json.loads(curl_in(media, *bearer(token), f"{SITE}/status?fid={job['fid']}")[1])[
            "state"
        ]
    assert state == "done"
    status, _ = curl_in(
        media, *bearer(token), "-r", "0-99", f"{SITE}/download?fid={job['fid']}",
        "-o", "part.mp3",
    )  # fmt: skip
    assert status == 206
    assert (media / "part.mp3").stat().st_size == 100
