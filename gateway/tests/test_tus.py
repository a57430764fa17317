"""The resumable uploads (tus 1.0): each header and refusal, a resume at any offset, the
bytes kept when a PATCH is cut, termination and expiry leaving nothing behind."""

from __future__ import annotations

import base64
import datetime as dt
import io
import threading

import pytest
from bson import ObjectId

from gateway_service import tus
from gateway_service.errors import GatewayError
from mp3common.http import ApiError
from mp3common.jobs import CHUNK_SIZE_BYTES

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def create(client, user, length: int, **meta: str):
    headers = {**TUS, **(user.headers if user else {}), "Upload-Length": str(length)}
    if meta:
        headers["Upload-Metadata"] = metadata(**meta)
    return client.post("/uploads", headers=headers)


def patch(client, user, location: str, offset: int, data: bytes, **headers: str):
    return client.patch(
        location,
        headers={
            **TUS,
            **user.headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
        data=data,
    )


def chunked_patch(client, user, location: str, offset: int, data: bytes):
    """A PATCH without Content-Length (Transfer-Encoding: chunked), as the server sees one."""
    return client.patch(
        location,
        headers={
            **TUS,
            **user.headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Transfer-Encoding": "chunked",
        },
        input_stream=io.BytesIO(data),
        environ_overrides={"wsgi.input_terminated": True},
    )


def head(client, user, location: str):
    return client.head(location, headers={**TUS, **user.headers})


# --- no store needed -------------------------------------------------------------------------


def test_metadata_is_base64_pairs_and_flags():
    header = f"{metadata(filename='clip día.mp4', format='opus')},flag"
    assert tus.parse_metadata(header) == {"filename": "clip día.mp4", "format": "opus", "flag": ""}
    assert tus.parse_metadata(None) == {}


@pytest.mark.parametrize(
    "header", ["filename ***", "filename " + base64.b64encode(b"\xff").decode()]
)
def test_metadata_that_is_not_base64_text_is_refused(header):
    with pytest.raises(ApiError) as refused:
        tus.parse_metadata(header)
    assert (refused.value.status, refused.value.error) == (400, "invalid_metadata")


def test_options_in_metadata_are_the_catalogs_and_client_keys_are_set_aside():
    meta = {"filename": "a.mp4", "filetype": "video/mp4", "format": "opus", "quality": "96k"}
    assert tus.options_of(meta) == {"format": "opus", "quality": "96k"}
    with pytest.raises(GatewayError) as refused:
        tus.options_of({"format": "ogg"})
    assert refused.value.code == "invalid_option"
    assert refused.value.detail["option"] == "format" and "mp3" in refused.value.detail["allowed"]
    with pytest.raises(GatewayError) as unknown:
        tus.options_of({"fromat": "mp3"})
    assert unknown.value.detail["option"] == "fromat"


def test_options_says_what_the_server_speaks(client):
    answer = client.options("/uploads")
    assert answer.status_code == 204
    assert answer.headers["Tus-Resumable"] == "1.0.0"
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert answer.headers["Tus-Extension"] == "creation,termination,expiration"
    assert int(answer.headers["Tus-Max-Size"]) > 0
    assert "Content-Type" not in answer.headers  # no body, so no text/html


def test_a_missing_length_is_said_to_be_required(client, alice):
    answer = client.post("/uploads", headers={**TUS, **alice.headers})
    assert (answer.status_code, answer.get_json()["error"]) == (400, "invalid_upload_length")
    assert "Upload-Length is required" in answer.get_json()["message"]


# Each row: the request's headers beside a valid token, then the exact status and error.
REFUSED_CREATIONS = [
    ("no-version", {"Upload-Length": "10"}, 412, "unsupported_tus_version"),
    ("no-version-and-no-length", {}, 400, "invalid_upload_length"),
    ("old-version", {**TUS, "Tus-Resumable": "0.2.2", "Upload-Length": "10"}, 412,
     "unsupported_tus_version"),
    ("no-length", {**TUS}, 400, "invalid_upload_length"),
    ("negative-length", {**TUS, "Upload-Length": "-1"}, 400, "invalid_upload_length"),
    ("deferred-length", {**TUS, "Upload-Defer-Length": "1"}, 400, "length_required"),
    ("empty", {**TUS, "Upload-Length": "0"}, 400, "empty_file"),
    ("too-large", {**TUS, "Upload-Length": str(10**15)}, 413, "file_too_large"),
    ("past-int64", {**TUS, "Upload-Length": str(10**19)}, 413, "file_too_large"),
    ("bad-option", {**TUS, "Upload-Length": "10", "Upload-Metadata": metadata(format="ogg")},
     400, "invalid_option"),
    ("bad-metadata", {**TUS, "Upload-Length": "10", "Upload-Metadata": "filename !!"}, 400,
     "invalid_metadata"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [row[1:] for row in REFUSED_CREATIONS],
    ids=[row[0] for row in REFUSED_CREATIONS],
)
def test_a_creation_that_cannot_be_taken_is_refused(client, alice, headers, status, error):
    answer = client.post("/uploads", headers={**alice.headers, **headers})
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"] == error
    assert answer.headers["Tus-Resumable"] == "1.0.0"


def test_no_token_no_upload(client):
    answer = create(client, None, 10)
    assert answer.status_code == 401


# --- on the real MongoDB-wire server -----------------------------------------------------------


@pytest.mark.stack
def test_an_upload_in_uneven_pieces_is_the_file_and_its_job(client, alice, media, stored):
    video = media["mp4"] + b"\0" * (2 * MiB + 12345)  # three chunks and a bit
    made = create(client, alice, len(video), filename="holiday.mp4", format="opus")
    assert made.status_code == 201, made.get_json()
    location = made.headers["Location"]
    fid = location.rsplit("/", 1)[1]
    assert location == f"/uploads/{fid}" and ObjectId.is_valid(fid)
    assert made.headers["Upload-Expires"].endswith("GMT")
    # Pieces that cut chunks anywhere, the first smaller than the sniff needs.
    cuts = [0, 1000, CHUNK_SIZE_BYTES + 7, 2 * CHUNK_SIZE_BYTES - 1, len(video) - 3, len(video)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        offset = head(client, alice, location)
        assert offset.status_code == 200 and offset.headers["Cache-Control"] == "no-store"
        assert int(offset.headers["Upload-Offset"]) == start
        assert int(offset.headers["Upload-Length"]) == len(video)
        answer = patch(client, alice, location, start, video[start:end])
        if end < len(video):
            assert answer.status_code == 204, answer.get_json()
            assert int(answer.headers["Upload-Offset"]) == end
    assert answer.status_code == 200, answer.get_json()
    job = answer.get_json()
    assert answer.headers["Upload-Job"] == fid == job["fid"]
    assert job["state"] == "queued" and job["filename"] == "holiday.mp4"
    assert job["size"] == len(video)
    assert stored.video(fid) == video
    assert stored.jobs.get(ObjectId(fid)).content_type == "video/mp4"
    done = head(client, alice, location)
    assert done.headers["Upload-Offset"] == str(len(video)) == done.headers["Upload-Length"]
    # The last answer lost and the PATCH sent again: the same job, nothing new.
    last = cuts[-2]
    for offset, body in [(last, video[last:]), (len(video), b"")]:
        again = patch(client, alice, location, offset, body)
        assert again.status_code == 200, again.get_json()
        assert again.get_json()["fid"] == fid == again.headers["Upload-Job"]
    chunked = chunked_patch(client, alice, location, last, video[last:])
    assert chunked.status_code == 200 and chunked.headers["Upload-Job"] == fid
    assert stored.counts()["jobs"] == 1
    assert stored.video(fid) == video
    # Anything else sent to a finished upload is not its last piece.
    for offset, body in [(last, video[last:-1]), (0, video[:10]), (last + 1, video[last:])]:
        other = patch(client, alice, location, offset, body)
        assert other.status_code == 409 and other.get_json()["error"] == "upload_finished"


@pytest.mark.stack
def test_a_wrong_offset_is_a_conflict_that_names_the_right_one(client, alice, media):
    location = create(client, alice, len(media["mp4"])).headers["Location"]
    assert patch(client, alice, location, 0, media["mp4"][:500]).status_code == 204
    answer = patch(client, alice, location, 0, media["mp4"][:500])
    assert answer.status_code == 409
    assert answer.get_json()["error"] == "offset_mismatch"
    assert answer.headers["Upload-Offset"] == "500"
    wrong_type = patch(client, alice, location, 500, b"x", **{"Content-Type": "video/mp4"})
    assert wrong_type.status_code == 415
    too_much = patch(client, alice, location, 500, b"x" * len(media["mp4"]))
    assert too_much.status_code == 413 and too_much.get_json()["error"] == "past_upload_length"


@pytest.mark.stack
def test_someone_elses_upload_is_not_found(client, alice, bob, media):
    location = create(client, alice, len(media["mp4"])).headers["Location"]
    assert head(client, bob, location).status_code == 404
    assert patch(client, bob, location, 0, media["mp4"]).status_code == 404
    assert client.delete(location, headers={**TUS, **bob.headers}).status_code == 404
    assert head(client, alice, location).status_code == 200
    assert head(client, alice, "/uploads/not-an-id").status_code == 404


@pytest.mark.stack
def test_not_media_is_refused_on_its_first_bytes_and_nothing_kept(client, alice, database):
    text = b"hello, I am not a video\n" * 100_000
    location = create(client, alice, len(text), filename="clip.mp4").headers["Location"]
    answer = patch(client, alice, location, 0, text)
    assert answer.status_code == 415 and answer.get_json()["error"] == "unsupported_media_type"
    assert database["tus_uploads"].count_documents({}) == 0
    assert database["videos.chunks"].count_documents({}) == 0
    assert head(client, alice, location).status_code == 404


@pytest.mark.stack
def test_termination_leaves_nothing(client, alice, media, database):
    video = media["mp4"] + b"\0" * (CHUNK_SIZE_BYTES + 10)
    location = create(client, alice, len(video)).headers["Location"]
    assert patch(client, alice, location, 0, video[:-5]).status_code == 204
    assert database["videos.chunks"].count_documents({}) == 1
    answer = client.delete(location, headers={**TUS, **alice.headers})
    assert answer.status_code == 204
    assert database["tus_uploads"].count_documents({}) == 0
    assert database["videos.chunks"].count_documents({}) == 0
    assert head(client, alice, location).status_code == 404


@pytest.mark.stack
def test_a_busy_upload_answers_423_and_a_stale_lease_is_taken_over(client, alice, media, database):
    location = create(client, alice, len(media["mp4"])).headers["Location"]
    fid = ObjectId(location.rsplit("/", 1)[1])
    uploads = database["tus_uploads"]
    held = {"by": "other", "until": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)}
    uploads.update_one({"_id": fid}, {"$set": {"patch": held}})
    busy = patch(client, alice, location, 0, media["mp4"])
    assert busy.status_code == 423 and busy.get_json()["error"] == "upload_busy"
    stale = {"by": "other", "until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}
    uploads.update_one({"_id": fid}, {"$set": {"patch": stale}})
    assert patch(client, alice, location, 0, media["mp4"]).status_code == 200


@pytest.mark.stack
def test_expired_uploads_are_swept_with_their_chunks(client, alice, media, database):
    video = media["mp4"] + b"\0" * CHUNK_SIZE_BYTES
    old = create(client, alice, len(video)).headers["Location"]
    assert patch(client, alice, old, 0, video[:-1]).status_code == 204
    fresh = create(client, alice, len(video)).headers["Location"]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    database["tus_uploads"].update_one(
        {"_id": ObjectId(old.rsplit("/", 1)[1])}, {"$set": {"expires_at": past}}
    )
    assert tus.remove_expired_uploads(database) == 1
    assert database["videos.chunks"].count_documents({}) == 0
    assert head(client, alice, old).status_code == 404
    assert head(client, alice, fresh).status_code == 200


@pytest.mark.stack
def test_unfinished_uploads_count_against_the_byte_quota(make_app, alice):
    client = make_app(QUOTA_STORED_BYTES=str(10 * MiB)).test_client()
    made = create(client, alice, 6 * MiB)
    assert made.status_code == 201
    refused = create(client, alice, 6 * MiB)
    assert refused.status_code == 413
    answer = refused.get_json()
    assert (answer["error"], answer["quota"]) == ("quota_exceeded", "stored_bytes")
    # What holds the room is said, how to free it, and when it frees by itself: the
    # unfinished upload's expiry (no job of hers expires sooner; she has none).
    assert (answer["used"], answer["unfinished_upload_bytes"]) == (6 * MiB, 6 * MiB)
    expires = dt.datetime.strptime(made.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT")
    frees_at = dt.datetime.fromisoformat(answer["frees_at"].replace("Z", "+00:00"))
    assert abs(frees_at.replace(tzinfo=None) - expires) < dt.timedelta(seconds=1)
    assert "DELETE /uploads/<fid>" in answer["message"]
    assert "never" not in answer["message"] and "Retry-After" in refused.headers
    assert create(client, alice, 3 * MiB).status_code == 201


@pytest.mark.stack
def test_a_patch_cut_mid_body_keeps_every_byte_that_arrived(client, alice, media, database):
    video = media["mp4"] + b"\0" * (2 * CHUNK_SIZE_BYTES)
    location = create(client, alice, len(video)).headers["Location"]
    arrived = CHUNK_SIZE_BYTES + 4321  # a whole chunk and a piece of the next
    answer = client.patch(
        location,
        headers={
            **TUS,
            **alice.headers,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(len(video)),  # announced; the connection ends before
        },
        input_stream=io.BytesIO(video[:arrived]),
    )
    # However the server hears of the end (an early EOF, or ClientDisconnected), what
    # arrived is kept; the answer goes nowhere.
    assert answer.status_code in (204, 400)
    assert head(client, alice, location).headers["Upload-Offset"] == str(arrived)
    record = database["tus_uploads"].find_one({"_id": ObjectId(location.rsplit("/", 1)[1])})
    assert (record["chunks"], len(record["tail"]), record["patch"]) == (1, 4321, None)
    rest = patch(client, alice, location, arrived, video[arrived:])
    assert rest.status_code == 200, rest.get_json()


@pytest.mark.stack
def test_an_upload_whose_gateway_died_while_making_its_job_is_swept_with_its_file(database):
    fid, past = ObjectId(), dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    database["tus_uploads"].insert_one(
        {"_id": fid, "state": "finishing", "offset": 5, "length": 5, "expires_at": past}
    )
    database["videos.chunks"].insert_one({"files_id": fid, "n": 0, "data": b"12345"})
    database["videos.files"].insert_one({"_id": fid, "length": 5, "chunkSize": CHUNK_SIZE_BYTES})
    assert tus.remove_expired_uploads(database) == 1
    assert database["videos.files"].count_documents({}) == 0
    assert database["videos.chunks"].count_documents({}) == 0
    assert database["tus_uploads"].count_documents({}) == 0


class PausingBody(io.RawIOBase):
    """A PATCH body that stops after `first` bytes until `go` is set: a slow client."""

    def __init__(self, data: bytes, first: int) -> None:
        self.data, self.first, self.position = data, first, 0
        self.paused, self.go = threading.Event(), threading.Event()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # werkzeug's test client measures the body by seeking to its end

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset + (len(self.data) if whence == io.SEEK_END else 0)
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        if self.position == self.first:
            self.paused.set()
            assert self.go.wait(30)
        end = self.position + len(buffer)
        if self.position < self.first:
            end = min(end, self.first)
        piece = self.data[self.position : end]
        buffer[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)


@pytest.mark.stack
def test_termination_waits_for_a_patch_and_a_patch_whose_upload_went_leaves_nothing(
    client, alice, media, database
):
    video = media["mp4"] + b"\0" * (3 * CHUNK_SIZE_BYTES)
    location = create(client, alice, len(video)).headers["Location"]
    fid = ObjectId(location.rsplit("/", 1)[1])
    body = PausingBody(video, CHUNK_SIZE_BYTES + 10)  # one chunk written, then a pause
    answers = []
    headers = {
        **TUS,
        **alice.headers,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(len(video)),
    }
    sending = threading.Thread(
        target=lambda: answers.append(client.patch(location, headers=headers, input_stream=body))
    )
    sending.start()
    try:
        assert body.paused.wait(30)
        busy = client.delete(location, headers={**TUS, **alice.headers})
        assert busy.status_code == 423 and busy.get_json()["error"] == "upload_busy"
        assert database["videos.chunks"].count_documents({"files_id": fid}) == 1
        # The PATCH's gateway looks dead (its lease ran out): termination goes ahead, and
        # the PATCH, when it wakes, finds its upload gone.
        stale = {"by": "gone", "until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}
        database["tus_uploads"].update_one({"_id": fid}, {"$set": {"patch.until": stale["until"]}})
        assert client.delete(location, headers={**TUS, **alice.headers}).status_code == 204
    finally:
        body.go.set()
        sending.join(30)
    assert answers[0].status_code == 409
    assert answers[0].get_json()["error"] == "upload_taken_over"
    assert database["videos.chunks"].count_documents({"files_id": fid}) == 0
    assert database["tus_uploads"].count_documents({"_id": fid}) == 0


@pytest.mark.stack
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_patch_past_the_length_keeps_nothing_of_itself(client, alice, media, database, chunked):
    video = media["mp4"] + b"\0" * (CHUNK_SIZE_BYTES + 100)
    location = create(client, alice, len(video)).headers["Location"]
    fid = ObjectId(location.rsplit("/", 1)[1])
    assert patch(client, alice, location, 0, video[:1000]).status_code == 204
    before = database["tus_uploads"].find_one({"_id": fid})
    body = video[1000:] + b"one too many"
    # Without Content-Length the server learns of the excess only after the bytes up to
    # the length (a chunk among them) were written.
    send = chunked_patch if chunked else patch
    answer = send(client, alice, location, 1000, body)
    assert answer.status_code == 413 and answer.get_json()["error"] == "past_upload_length"
    assert answer.headers["Upload-Offset"] == "1000"
    after = database["tus_uploads"].find_one({"_id": fid})
    for field in ("offset", "chunks", "tail", "state", "content_type"):
        assert after[field] == before[field], field
    assert after["patch"] is None
    assert database["videos.chunks"].count_documents({"files_id": fid}) == 0
    assert database["jobs"].count_documents({"_id": fid}) == 0
    assert patch(client, alice, location, 1000, video[1000:]).status_code == 200


@pytest.mark.stack
def test_an_expired_upload_is_gone_before_the_sweep_comes(make_app, alice, media, database):
    client = make_app(QUOTA_STORED_BYTES=str(10 * MiB)).test_client()
    location = create(client, alice, 6 * MiB).headers["Location"]
    assert patch(client, alice, location, 0, media["mp4"]).status_code == 204
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    database["tus_uploads"].update_one(
        {"_id": ObjectId(location.rsplit("/", 1)[1])}, {"$set": {"expires_at": past}}
    )
    size = len(media["mp4"])
    assert head(client, alice, location).status_code == 404
    assert patch(client, alice, location, size, b"more").status_code == 404
    assert client.delete(location, headers={**TUS, **alice.headers}).status_code == 404
    # Its length no longer holds room in the byte quota either.
    assert create(client, alice, 6 * MiB).status_code == 201
