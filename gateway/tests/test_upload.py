"""POST /upload: every refusal, the happy path, and every outage it must survive or undo."""

import io
import json
import socket
import time

import pytest
import requests
from bson import ObjectId
from conftest import MANAGEMENT_URL, RABBITMQ_URL, exchange, serving, upload
from forms import file_part, multipart, post_raw

from gateway_service.publishing import connection_name
from gateway_service.uploads import READ_BYTES
from mp3common.amqp import Publisher
from mp3testing import close_connections, get_message, wait_until

KiB, MiB = 1024, 1024 * 1024


# Each row: how the request is made, then the exact answer. `make` gets (client, alice, media).
REFUSALS = [
    ("no-token", lambda c, a, m: upload(c, None, [("file", "clip.mp4", m["mp4"])]),
     401, "missing_token"),
    ("garbage-token",
     lambda c, a, m: c.post("/upload", headers={"Authorization": "Bearer not.a.jwt"},
                            data={"file": (io.BytesIO(m["mp4"]), "clip.mp4")}),
     401, "invalid_token"),
    ("basic-instead-of-bearer",
     lambda c, a, m: c.post("/upload", headers={"Authorization": "Basic YTpi"},
                            data={"file": (io.BytesIO(m["mp4"]), "clip.mp4")}),
     401, "missing_token"),
    ("json-body", lambda c, a, m: c.post("/upload", headers=a.headers, json={"file": "x"}),
     400, "not_multipart"),
    ("multipart-without-boundary",
     lambda c, a, m: post_raw(c, a, b"whatever", "multipart/form-data"), 400, "not_multipart"),
    ("empty-body", lambda c, a, m: post_raw(c, a, b"", "multipart/form-data; boundary=xyz"),
     400, "missing_file"),
    ("no-file-only-a-field",
     lambda c, a, m: post_raw(c, a, multipart("xyz", b'Content-Disposition: form-data; '
                                           b'name="title"\r\n\r\nmy clip'),
                          "multipart/form-data; boundary=xyz"),
     400, "missing_file"),
    ("file-in-another-field", lambda c, a, m: upload(c, a, [("video", "clip.mp4", m["mp4"])]),
     400, "unexpected_file"),
    ("two-files",
     lambda c, a, m: upload(c, a, [("file", "a.mp4", m["mp4"]), ("file", "b.mp4", m["mp4"])]),
     400, "too_many_files"),
    ("two-files-second-elsewhere",
     lambda c, a, m: upload(c, a, [("file", "a.mp4", m["mp4"]), ("other", "b.mp4", m["mp4"])]),
     400, "unexpected_file"),
    ("empty-file", lambda c, a, m: upload(c, a, [("file", "clip.mp4", b"")]), 400, "empty_file"),
    ("text-named-mp4",
     lambda c, a, m: upload(c, a, [("file", "clip.mp4", b"hello, I am not a video\n" * 50)]),
     415, "unsupported_media_type"),
    ("png-named-mp4", lambda c, a, m: upload(c, a, [("file", "clip.mp4", m["png"])]),
     415, "unsupported_media_type"),
    ("tiny-text-named-mp4", lambda c, a, m: upload(c, a, [("file", "clip.mp4", b"x")]),
     415, "unsupported_media_type"),
    ("over-the-limit",
     lambda c, a, m: upload(c, a, [("file", "big.mp4", m["mp4"] + b"\0" * (300 * KiB))]),
     413, "file_too_large"),
    ("truncated-body",
     lambda c, a, m: post_raw(c, a, multipart("xyz", file_part(m["mp4"]), end=False)[:-100],
                          "multipart/form-data; boundary=xyz"),
     400, "malformed_upload"),
    ("part-without-disposition",
     lambda c, a, m: post_raw(c, a, multipart("xyz", b"Content-Type: video/mp4\r\n\r\n" + m["mp4"]),
                          "multipart/form-data; boundary=xyz"),
     400, "malformed_upload"),
    ("endless-part-headers",
     lambda c, a, m: post_raw(c, a, b"--xyz\r\n" + b"X-Junk: aaaaaaaaaa\r\n" * 10_000,
                          "multipart/form-data; boundary=xyz"),
     400, "malformed_upload"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "status", "error"),
    [row[1:] for row in REFUSALS],
    ids=[row[0] for row in REFUSALS],
)
@pytest.mark.stack
def test_refusals_answer_exactly_and_leave_nothing_behind(
    make_app, alice, media, stored, make, status, error
):
    client = make_app(MAX_UPLOAD_BYTES=str(256 * KiB)).test_client()
    response = make(client, alice, media)
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error
    assert body["message"]  # says what to do
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}


@pytest.mark.stack
def test_an_upload_is_stored_queued_and_announced(client, alice, media, stored, queue_name):
    response = upload(client, alice, [("file", "holiday clip.mp4", media["mp4"])])
    assert response.status_code == 202
    body = response.get_json()
    fid = body["fid"]
    assert body["state"] == "queued"
    assert body["filename"] == "holiday clip.mp4"
    assert body["size"] == len(media["mp4"])
    assert body["status_url"] == f"/status?fid={fid}" == response.headers["Location"]
    assert body["download_url"] == f"/download?fid={fid}"

    assert stored.video(fid) == media["mp4"]
    job = stored.jobs.get(ObjectId(fid))
    assert job.owner == alice.email
    assert job.state == "queued"
    assert job.content_type == "video/mp4"
    assert job.created_at is not None

    message, properties = get_message(queue_name)
    assert json.loads(message) == {
        "video_fid": fid,
        "mp3_fid": None,
        "username": alice.email,
        "filename": "holiday clip.mp4",
        "format": "mp3",
    }
    assert properties.delivery_mode == 2  # persistent
    assert properties.headers["x-request-id"] == response.headers["X-Request-ID"]

    status = client.get(f"/status?fid={fid}", headers=alice.headers).get_json()
    assert status["state"] == "queued"


@pytest.mark.parametrize("kind", ["mp4", "mkv", "ts", "mp3", "wav"])
@pytest.mark.stack
def test_video_and_audio_containers_are_accepted_by_content(client, alice, media, kind, stored):
    response = upload(client, alice, [("file", "no-extension", media[kind])])
    assert response.status_code == 202, response.get_json()
    assert stored.video(response.get_json()["fid"]) == media[kind]


@pytest.mark.stack
def test_a_file_of_exactly_the_limit_is_accepted(make_app, alice, media):
    limit = 64 * KiB
    content = (media["mp4"] + b"\0" * limit)[:limit]
    client = make_app(MAX_UPLOAD_BYTES=str(limit)).test_client()
    assert upload(client, alice, [("file", "clip.mp4", content)]).status_code == 202
    over = upload(client, alice, [("file", "clip.mp4", content + b"\0")])
    assert over.status_code == 413
    assert over.get_json()["max_bytes"] == limit


@pytest.mark.stack
def test_a_large_upload_crosses_many_reads_and_chunks_intact(client, alice, media, stored):
    content = media["mp4"] + bytes(range(256)) * (5 * MiB // 256) + b"\r\n--tail"
    response = upload(client, alice, [("file", "big.mp4", content)])
    assert response.status_code == 202
    assert stored.video(response.get_json()["fid"]) == content
    assert len(content) > 5 * READ_BYTES


@pytest.mark.stack
def test_a_path_in_the_filename_is_reduced_to_the_name(client, alice, media):
    response = upload(client, alice, [("file", "../../etc/clip\x07.mp4", media["mp4"])])
    assert response.get_json()["filename"] == "clip.mp4"


@pytest.mark.stack
def test_a_form_field_that_is_no_option_is_refused_naming_it(client, alice, media, stored):
    """A misspelt option (`fromat=opus`) would otherwise give an MP3 without a word."""
    response = client.post(
        "/upload",
        headers=alice.headers,
        data={"title": "x", "file": (io.BytesIO(media["mp4"]), "clip.mp4")},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_option"
    assert response.get_json()["option"] == "title"
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}


# --- over real sockets -----------------------------------------------------------------------


def _request_head(port: int, token: str, length: int, boundary: str = "xyz") -> bytes:
    return (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.stack
def test_a_declared_length_over_the_limit_is_refused_before_reading(make_app, alice, stored):
    with serving(make_app(MAX_UPLOAD_BYTES=str(MiB))) as port:
        answer = exchange(port, _request_head(port, alice.token, 3 * 1024**3))
    assert answer.startswith("HTTP/1.1 413")
    assert json.loads(answer.split("\r\n\r\n", 1)[1])["error"] == "file_too_large"
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}


@pytest.mark.stack
def test_a_client_hanging_up_mid_upload_leaves_no_file_or_job(live_gateway, alice, media, stored):
    port = live_gateway
    head = multipart("xyz", file_part(media["mp4"]), end=False)[: -len(b"\r\n")]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_request_head(port, alice.token, 40 * MiB))
        sock.sendall(head)
        for _ in range(12):
            sock.sendall(b"\0" * MiB)
        # It really was streaming into GridFS.
        assert wait_until(lambda: stored.counts()["chunks"] >= 4, timeout=10)
    nothing = {"files": 0, "chunks": 0, "jobs": 0}
    assert wait_until(lambda: stored.counts() == nothing, timeout=10), stored.counts()


# --- the broker and the stores failing -------------------------------------------------------


@pytest.mark.stack
def test_upload_works_after_the_broker_closed_the_gateways_connection(
    client, alice, media, queue_name
):
    assert upload(client, alice, [("file", "a.mp4", media["mp4"])]).status_code == 202
    # The management API lists new connections lazily.
    closed = wait_until(lambda: close_connections(connection_name()), timeout=15, interval=0.5)
    assert closed == 1
    time.sleep(0.5)  # the broker closes it asynchronously; the management API lags behind
    second = upload(client, alice, [("file", "b.mp4", media["mp4"])])
    assert second.status_code == 202, second.get_json()
    fids = [json.loads(get_message(queue_name)[0])["video_fid"] for _ in range(2)]
    assert fids[1] == second.get_json()["fid"]


@pytest.mark.stack
def test_no_broker_means_503_and_nothing_kept(make_app, alice, media, stored):
    client = make_app(
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/%2F", RABBITMQ_TIMEOUT_SECONDS="1"
    ).test_client()
    started = time.monotonic()
    response = upload(client, alice, [("file", "clip.mp4", media["mp4"])])
    assert response.status_code == 503
    assert response.get_json()["error"] == "queue_unavailable"
    assert time.monotonic() - started < 10
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}


@pytest.fixture
def refusing_queue(queue_name):
    """The broker nacks every message to the test's queue (a max-length 0 policy)."""
    policy = f"{MANAGEMENT_URL}/api/policies/%2F/{queue_name}"
    requests.put(
        policy,
        json={
            "pattern": f"^{queue_name}$",
            "definition": {"max-length": 0, "overflow": "reject-publish"},
            "apply-to": "queues",
            "priority": 99,
        },
        timeout=5,
    ).raise_for_status()
    # A quorum queue takes one message past its limit; fill that place first.
    filler = Publisher(RABBITMQ_URL, [queue_name])
    filler.publish(queue_name, {"filler": True})
    filler.close()
    yield queue_name
    requests.delete(policy, timeout=5)


@pytest.mark.stack
def test_a_message_the_broker_refuses_means_503_and_nothing_kept(
    client, alice, media, stored, refusing_queue
):
    response = upload(client, alice, [("file", "clip.mp4", media["mp4"])])
    assert response.status_code == 503
    assert response.get_json()["error"] == "queue_unavailable"
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}


def test_mongodb_down_is_a_quick_503(make_app, alice, media):
    client = make_app(
        MONGODB_URI="mongodb://127.0.0.1:1/?directConnection=true", MONGODB_TIMEOUT_MS="500"
    ).test_client()
    for request in (
        lambda: upload(client, alice, [("file", "clip.mp4", media["mp4"])]),
        lambda: client.get("/status?fid=6b0925366b0925366b092536", headers=alice.headers),
        lambda: client.get("/jobs", headers=alice.headers),
    ):
        started = time.monotonic()
        response = request()
        assert response.status_code == 503
        assert response.get_json()["error"] == "storage_unavailable"
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("address", ["unreachable", "silent"])
def test_auth_down_or_hung_is_a_quick_503(make_app, alice, media, silent_port, address):
    port = 1 if address == "unreachable" else silent_port
    client = make_app(AUTH_SVC_ADDRESS=f"127.0.0.1:{port}", AUTH_TIMEOUT_SECONDS="1").test_client()
    started = time.monotonic()
    response = upload(client, alice, [("file", "clip.mp4", media["mp4"])])
    assert response.status_code == 503
    assert response.get_json()["error"] == "auth_unavailable"
    assert time.monotonic() - started < 5
