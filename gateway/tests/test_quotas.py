"""Quotas per user (issue 13): bytes stored, uploads per hour, media length per upload.
Each refusal says which quota, its numbers and when it frees, and keeps nothing."""

import datetime as dt
import io
import json
import re
import socket

import pytest
from bson import ObjectId
from conftest import serving, upload
from forms import CONTENT_TYPE, file_part, form

from mp3common.jobs import now

pytestmark = pytest.mark.stack  # quotas count in MongoDB

NOTHING = {"files": 0, "chunks": 0, "jobs": 0}


class WatchedBody(io.BytesIO):
    """A request body that says whether the gateway read it, and can do something the
    first time it is read (what another request of the same user does meanwhile)."""

    def __init__(self, data: bytes, on_first_read=None) -> None:
        super().__init__(data)
        self.reads = 0
        self._on_first_read = on_first_read

    def _reading(self) -> None:
        if self.reads == 0 and self._on_first_read is not None:
            self._on_first_read()
        self.reads += 1

    def read(self, size: int | None = -1) -> bytes:
        self._reading()
        return super().read(size)

    def readinto(self, buffer) -> int:  # what Werkzeug's LimitedStream calls
        self._reading()
        return super().readinto(buffer)


def _post(client, user, body: bytes, on_first_read=None):
    watched = WatchedBody(body, on_first_read)
    response = client.post(
        "/upload",
        headers={**user.headers, "Content-Type": CONTENT_TYPE},
        input_stream=watched,
        content_length=len(body),
    )
    return response, watched


def _clip(media, padding: int = 0) -> bytes:
    return form(file_part(media["mp4"] + b"\0" * padding))


# --- bytes stored ---------------------------------------------------------------------------


def test_an_upload_past_the_byte_quota_is_refused_before_its_body_is_read(
    make_app, alice, media, stored
):
    first = upload(make_app().test_client(), alice, [("file", "a.mp4", media["mp4"])])
    fid = first.get_json()["fid"]
    stored.finish_job(fid, b"x" * 500)  # a done job counts its output (its video goes)
    expires = now() + dt.timedelta(days=1)
    stored.jobs.collection.update_one({"_id": ObjectId(fid)}, {"$set": {"expires_at": expires}})
    before = stored.counts()

    client = make_app(QUOTA_STORED_BYTES="1000").test_client()
    body = _clip(media, padding=200_000)  # past what is left, multipart's framing allowed for
    response, watched = _post(client, alice, body)
    assert response.status_code == 413
    answer = response.get_json()
    assert answer["error"] == "quota_exceeded"
    assert answer["quota"] == "stored_bytes"
    assert (answer["limit"], answer["used"], answer["needed"]) == (1000, 500, len(body))
    assert answer["frees_at"].startswith(expires.isoformat()[:16])
    assert 86000 < int(response.headers["Retry-After"]) <= 86400
    assert "DELETE /jobs/<fid>" in answer["message"]
    assert watched.reads == 0
    assert stored.counts() == before


def test_a_body_past_the_byte_quota_is_refused_while_it_streams(make_app, alice, media, stored):
    """No Content-Length (chunked): the quota is judged on the bytes as they come."""
    app = make_app(QUOTA_STORED_BYTES=str(100_000))
    body = _clip(media, padding=300_000)
    chunks = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        for piece in (body[i : i + 65536] for i in range(0, len(body), 65536))
    )
    with serving(app) as port:
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {alice.token}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        status, refusal = _json_answer(port, head + chunks + b"0\r\n\r\n")
    assert status == 413
    assert refusal["quota"] == "stored_bytes"
    assert refusal["used"] == 0 and refusal["limit"] == 100_000
    assert refusal["size"] > 100_000
    assert refusal["frees_at"] is None  # nothing of alice's expires
    assert stored.counts() == NOTHING


def _json_answer(port: int, request: bytes) -> tuple[int, dict]:
    """Send `request`; the answer's status and JSON body (read to its Content-Length: the
    development server keeps a chunked request's connection open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(body) < length:
            body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_deleting_a_job_frees_its_bytes(make_app, alice, media):
    client = make_app(QUOTA_STORED_BYTES=str(len(media["mp4"]) + 1000)).test_client()
    first = upload(client, alice, [("file", "a.mp4", media["mp4"])]).get_json()["fid"]
    assert upload(client, alice, [("file", "b.mp4", media["mp4"])]).status_code == 413
    assert client.delete(f"/jobs/{first}", headers=alice.headers).status_code == 204
    assert upload(client, alice, [("file", "b.mp4", media["mp4"])]).status_code == 202


def test_the_byte_quota_is_each_users_own(make_app, alice, bob, media):
    client = make_app(QUOTA_STORED_BYTES=str(len(media["mp4"]) + 1000)).test_client()
    assert upload(client, alice, [("file", "a.mp4", media["mp4"])]).status_code == 202
    assert upload(client, bob, [("file", "a.mp4", media["mp4"])]).status_code == 202


# --- uploads per hour -----------------------------------------------------------------------


def test_uploads_past_the_hours_quota_get_429_with_retry_after(make_app, alice, media, stored):
    client = make_app(QUOTA_JOBS_PER_HOUR="2").test_client()
    for _ in range(2):
        assert upload(client, alice, [("file", "a.mp4", media["mp4"])]).status_code == 202
    response, watched = _post(client, alice, _clip(media))
    assert response.status_code == 429
    answer = response.get_json()
    assert answer["error"] == "quota_exceeded"
    assert answer["quota"] == "jobs_per_hour"
    assert (answer["limit"], answer["used"]) == (2, 2)
    seconds = int(response.headers["Retry-After"])
    assert 3500 < seconds <= 3600 and answer["retry_after_seconds"] == seconds
    assert answer["frees_at"].endswith("Z")
    assert watched.reads == 0
    assert stored.counts()["jobs"] == 2


def test_the_job_is_counted_when_it_is_written(make_app, alice, media, stored):
    """The quota allowed the upload before its body, but another upload of the same user
    took the last place while this one streamed: the stored file is removed."""
    app = make_app(QUOTA_JOBS_PER_HOUR="1")
    quotas = app.extensions["gateway"].quotas
    response, watched = _post(
        app.test_client(), alice, _clip(media), on_first_read=lambda: quotas.count_job(alice.email)
    )
    assert response.status_code == 429
    assert response.get_json()["used"] == 1
    assert watched.reads > 0
    assert stored.counts() == NOTHING


def test_the_hours_quota_is_each_users_own(make_app, alice, bob, media):
    client = make_app(QUOTA_JOBS_PER_HOUR="1").test_client()
    assert upload(client, alice, [("file", "a.mp4", media["mp4"])]).status_code == 202
    assert upload(client, bob, [("file", "a.mp4", media["mp4"])]).status_code == 202
    assert upload(client, alice, [("file", "a.mp4", media["mp4"])]).status_code == 429


# --- media length ---------------------------------------------------------------------------


def test_media_longer_than_the_quota_is_refused_before_it_is_stored(make_app, alice, media, stored):
    client = make_app(QUOTA_MEDIA_SECONDS="1").test_client()  # the clip is 2 s long
    response = upload(client, alice, [("file", "a.mp4", media["mp4"])])
    assert response.status_code == 413
    answer = response.get_json()
    assert answer["quota"] == "media_seconds"
    assert answer["limit"] == 1
    assert 1.9 < answer["duration_seconds"] < 2.2
    assert answer["frees_at"] is None
    assert stored.counts() == NOTHING


def test_the_media_quota_goes_on_the_job_for_the_converter(make_app, alice, media, stored):
    client = make_app(QUOTA_MEDIA_SECONDS="90").test_client()
    fid = upload(client, alice, [("file", "a.mp4", media["mp4"])]).get_json()["fid"]
    assert stored.jobs.get(ObjectId(fid)).max_media_seconds == 90


# --- off ------------------------------------------------------------------------------------


def test_zero_turns_each_quota_off(make_app, alice, media, stored):
    client = make_app(
        QUOTA_STORED_BYTES="0", QUOTA_JOBS_PER_HOUR="0", QUOTA_MEDIA_SECONDS="0"
    ).test_client()
    for _ in range(3):
        assert upload(client, alice, [("file", "a.mp4", media["mp4"])]).status_code == 202
    assert {job["max_media_seconds"] for job in stored.jobs.collection.find()} == {None}


def test_a_trim_is_what_counts_against_the_media_quota(make_app, alice, media, stored):
    """The converter converts only the trimmed part: the quota judges that part too."""
    client = make_app(QUOTA_MEDIA_SECONDS="1").test_client()  # the clip is 2 s long
    within = {"end": "0.5", "file": (io.BytesIO(media["mp4"]), "a.mp4")}
    assert client.post("/upload", headers=alice.headers, data=within).status_code == 202
    past = {"start": "0.2", "file": (io.BytesIO(media["mp4"]), "a.mp4")}
    refused = client.post("/upload", headers=alice.headers, data=past)
    assert refused.status_code == 413
    assert 1.7 < refused.get_json()["duration_seconds"] < 2.0  # 2 s less the 0.2 s skipped


def test_a_retry_counts_against_the_hours_quota(make_app, alice, media, stored):
    """A retry converts and mails again, as an upload does: a failure that always comes
    back cannot be retried past the quota."""
    client = make_app(QUOTA_JOBS_PER_HOUR="1").test_client()
    fid = upload(client, alice, [("file", "a.mp4", media["mp4"])]).get_json()["fid"]
    stored.jobs.fail(ObjectId(fid), "a reason", expires_at=now() + dt.timedelta(days=1))
    response = client.post(f"/jobs/{fid}/retry", headers=alice.headers)
    assert response.status_code == 429
    assert response.get_json()["quota"] == "jobs_per_hour"
    assert stored.jobs.get(ObjectId(fid)).state == "failed"
