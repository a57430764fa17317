"""/jobs/<fid>: read, delete, cancel and retry a job, the owner's only; the download's
name and type per format, and an expired output (issue 13)."""

import datetime as dt
import json

import pytest
from bson import ObjectId
from conftest import upload
from forms import upload_with_options
from gridfs import GridFSBucket

from mp3common.jobs import MP3_BUCKET, VIDEO_BUCKET, iso, now
from mp3testing import get_message

pytestmark = pytest.mark.stack  # jobs and files in MongoDB, messages on RabbitMQ

DAY = dt.timedelta(days=1)


@pytest.fixture
def queued(client, alice, media, queue_name):
    """A job of alice's, just uploaded (its message taken off the queue): its fid."""
    response = upload(client, alice, [("file", "holiday clip.mov", media["mp4"])])
    assert response.status_code == 202
    assert get_message(queue_name) is not None
    return response.get_json()["fid"]


@pytest.fixture
def done(queued, stored, media):
    """alice's job, converted as the converter would, with a half-written output left by
    an earlier attempt: (fid, its output's id, the leftover's id)."""
    leftover = GridFSBucket(stored.database, MP3_BUCKET).upload_from_stream("x.mp3", b"half")
    stored.jobs.note_mp3_upload(ObjectId(queued), leftover)
    return queued, stored.finish_job(queued, media["mp3"]), leftover


def _files(stored, bucket: str) -> set[ObjectId]:
    return {doc["_id"] for doc in stored.database[f"{bucket}.files"].find({}, {"_id": 1})}


def _snapshot(stored) -> dict:
    """Everything in the test's database, to show that nothing changed."""
    names = ("jobs", f"{VIDEO_BUCKET}.files", f"{MP3_BUCKET}.files", f"{MP3_BUCKET}.chunks")
    return {name: list(stored.database[name].find({}, sort=[("_id", 1)])) for name in names}


def _fail(stored, fid: str, *, expires_in: dt.timedelta = DAY) -> None:
    stored.jobs.fail(ObjectId(fid), "the broker went away", expires_at=now() + expires_in)


# --- another user's fid: 404, and nothing changes -----------------------------------------

ACTIONS = [
    ("read", "get", ""),
    ("delete", "delete", ""),
    ("cancel", "post", "/cancel"),
    ("retry", "post", "/retry"),
]


@pytest.mark.parametrize(
    ("method", "suffix"), [a[1:] for a in ACTIONS], ids=[a[0] for a in ACTIONS]
)
@pytest.mark.parametrize("state", ["queued", "failed", "done"])
def test_another_users_fid_is_404_and_nothing_changes(
    client, bob, stored, done, state, method, suffix
):
    fid, mp3_fid, _ = done
    if state != "done":
        stored.jobs.collection.update_one({"_id": ObjectId(fid)}, {"$set": {"state": state}})
    before = _snapshot(stored)
    for which in (fid, str(mp3_fid)):
        response = getattr(client, method)(f"/jobs/{which}{suffix}", headers=bob.headers)
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"
    assert _snapshot(stored) == before


@pytest.mark.parametrize("fid", ["not-an-id", str(ObjectId()), '{"$ne": null}'])
def test_an_unknown_or_malformed_fid_is_404(client, alice, fid):
    for method, suffix in (("get", ""), ("delete", ""), ("post", "/cancel"), ("post", "/retry")):
        response = getattr(client, method)(f"/jobs/{fid}{suffix}", headers=alice.headers)
        assert response.status_code == 404


def test_the_job_resource_needs_a_token(client, queued):
    assert client.get(f"/jobs/{queued}").status_code == 401
    assert client.delete(f"/jobs/{queued}").status_code == 401


# --- read -------------------------------------------------------------------------------


def test_a_job_reads_as_status_does(client, alice, done):
    fid, mp3_fid, _ = done
    status = client.get(f"/status?fid={fid}", headers=alice.headers).get_json()
    for which in (fid, str(mp3_fid)):
        assert client.get(f"/jobs/{which}", headers=alice.headers).get_json() == status
    assert status["job_url"] == f"/jobs/{fid}"


# --- delete -------------------------------------------------------------------------------


def test_deleting_a_done_job_removes_its_video_outputs_and_record(client, alice, stored, done):
    fid, _, _ = done
    response = client.delete(f"/jobs/{fid}", headers=alice.headers)
    assert response.status_code == 204
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}
    assert _files(stored, MP3_BUCKET) == set()
    assert stored.database[f"{MP3_BUCKET}.chunks"].count_documents({}) == 0
    assert client.get(f"/jobs/{fid}", headers=alice.headers).status_code == 404
    assert client.delete(f"/jobs/{fid}", headers=alice.headers).status_code == 404


@pytest.mark.parametrize("state", ["queued", "converting", "failed", "cancelled"])
def test_a_job_is_deleted_in_any_state(client, alice, stored, queued, state):
    if state == "converting":
        stored.jobs.start(ObjectId(queued))
    elif state == "failed":
        _fail(stored, queued)
    elif state == "cancelled":
        client.post(f"/jobs/{queued}/cancel", headers=alice.headers)
    assert client.delete(f"/jobs/{queued}", headers=alice.headers).status_code == 204
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}


def test_deleting_one_job_leaves_the_others(client, alice, media, stored, done):
    other = upload(client, alice, [("file", "b.mp4", media["mp4"])]).get_json()["fid"]
    fid, _, _ = done
    client.delete(f"/jobs/{fid}", headers=alice.headers)
    assert stored.counts() == {"files": 1, "chunks": 1, "jobs": 1}
    assert stored.video(other) == media["mp4"]


# --- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["queued", "converting"])
def test_a_queued_or_converting_job_is_cancelled(make_app, alice, stored, queued, state):
    client = make_app(FAILED_VIDEO_RETENTION_SECONDS="3600").test_client()
    if state == "converting":
        stored.jobs.start(ObjectId(queued))
    response = client.post(f"/jobs/{queued}/cancel", headers=alice.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["state"] == "cancelled"
    assert body["expired"] is False
    job = stored.jobs.get(ObjectId(queued))
    assert job.state == "cancelled"
    expected = now() + dt.timedelta(hours=1)
    assert abs((job.expires_at - expected).total_seconds()) < 60
    assert stored.video(queued)  # kept for a retry
    assert "mail" not in body  # a cancelled job's owner did it: no mail


@pytest.mark.parametrize("state", ["done", "failed", "cancelled"])
def test_a_finished_job_cannot_be_cancelled(client, alice, stored, done, state):
    fid, _, _ = done
    if state == "failed":
        stored.jobs.collection.update_one({"_id": ObjectId(fid)}, {"$set": {"state": "failed"}})
    elif state == "cancelled":
        stored.jobs.collection.update_one({"_id": ObjectId(fid)}, {"$set": {"state": "queued"}})
        assert client.post(f"/jobs/{fid}/cancel", headers=alice.headers).status_code == 200
    before = _snapshot(stored)
    response = client.post(f"/jobs/{fid}/cancel", headers=alice.headers)
    assert response.status_code == 409
    assert response.get_json()["error"] == "already_finished"
    assert response.get_json()["state"] == state
    assert _snapshot(stored) == before


def test_a_cancelled_job_cannot_be_downloaded(client, alice, queued):
    client.post(f"/jobs/{queued}/cancel", headers=alice.headers)
    response = client.get(f"/download?fid={queued}", headers=alice.headers)
    assert response.status_code == 409
    assert response.get_json()["error"] == "cancelled"


# --- retry --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_a_failed_or_cancelled_job_is_queued_again_with_the_same_fid(
    client, alice, stored, queued, queue_name, state
):
    if state == "failed":
        _fail(stored, queued)
    else:
        client.post(f"/jobs/{queued}/cancel", headers=alice.headers)
    response = client.post(f"/jobs/{queued}/retry", headers=alice.headers)
    assert response.status_code == 202
    body = response.get_json()
    assert body["fid"] == queued
    assert body["state"] == "queued"
    assert "reason" not in body and "expires_at" not in body
    assert response.headers["Location"] == f"/status?fid={queued}"
    message, _ = get_message(queue_name)
    assert json.loads(message)["video_fid"] == queued
    job = stored.jobs.get(ObjectId(queued))
    assert job.retries == 1 and job.published_at is not None  # the broker confirmed it


@pytest.mark.parametrize("state", ["queued", "converting", "done"])
def test_only_a_failed_or_cancelled_job_can_be_retried(client, alice, stored, done, state):
    fid, _, _ = done
    if state != "done":
        stored.jobs.collection.update_one({"_id": ObjectId(fid)}, {"$set": {"state": state}})
    before = _snapshot(stored)
    response = client.post(f"/jobs/{fid}/retry", headers=alice.headers)
    assert response.status_code == 409
    assert response.get_json() | {"message": ""} == {
        "error": "not_retryable",
        "state": state,
        "message": "",
    }
    assert _snapshot(stored) == before


@pytest.mark.parametrize("how", ["swept", "time-has-come", "video-gone"])
def test_a_job_whose_video_expired_cannot_be_retried(client, alice, stored, queued, how):
    _fail(stored, queued, expires_in=-DAY if how != "video-gone" else DAY)
    if how == "swept":
        stored.jobs.collection.update_one(
            {"_id": ObjectId(queued)}, {"$set": {"expired_at": now()}}
        )
    if how == "video-gone":
        GridFSBucket(stored.database, VIDEO_BUCKET).delete(ObjectId(queued))
    response = client.post(f"/jobs/{queued}/retry", headers=alice.headers)
    assert response.status_code == 410
    body = response.get_json()
    assert body["error"] == "video_expired"
    assert body["expired_at"].endswith("Z")
    assert "upload it again" in body["message"]
    assert stored.jobs.get(ObjectId(queued)).state == "failed"


def test_a_retry_the_broker_does_not_take_stays_queued_for_the_outbox_relay(
    make_app, alice, stored, queued
):
    down = make_app(
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/%2F", RABBITMQ_TIMEOUT_SECONDS="1"
    ).test_client()
    _fail(stored, queued)
    response = down.post(f"/jobs/{queued}/retry", headers=alice.headers)
    assert response.status_code == 202
    job = stored.jobs.get(ObjectId(queued))
    assert job.state == "queued" and job.published_at is None  # the relay's to publish


# --- download: per format, expired --------------------------------------------------------

FORMATS = [
    ("mp3", "audio/mpeg", "clip.mp3"),
    ("m4a", "audio/mp4", "clip.m4a"),
    ("opus", "audio/ogg", "clip.opus"),
    ("flac", "audio/flac", "clip.flac"),
    ("wav", "audio/wav", "clip.wav"),
]


@pytest.mark.parametrize(("output", "mime_type", "name"), FORMATS)
def test_the_download_is_named_and_typed_by_its_format(
    client, alice, media, stored, output, mime_type, name
):
    response = upload_with_options(client, alice, media["mp4"], before={"format": output})
    fid = response.get_json()["fid"]
    stored.finish_job(fid, b"converted bytes")
    response = client.get(f"/download?fid={fid}", headers=alice.headers)
    assert response.status_code == 200
    assert response.mimetype == mime_type
    assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
    assert response.get_data() == b"converted bytes"


@pytest.mark.parametrize("how", ["swept", "time-has-come"])
def test_an_expired_output_is_410_saying_when(client, alice, stored, done, how):
    fid, _, _ = done
    expired = now() - dt.timedelta(hours=2)
    update = {"expires_at": expired, **({"expired_at": now()} if how == "swept" else {})}
    stored.jobs.collection.update_one({"_id": ObjectId(fid)}, {"$set": update})
    response = client.get(f"/download?fid={fid}", headers=alice.headers)
    assert response.status_code == 410
    body = response.get_json()
    assert body["error"] == "output_expired"
    assert body["expired_at"] == iso(stored.jobs.get(ObjectId(fid)).expires_at)
    assert body["expired_at"].startswith(expired.isoformat(timespec="seconds")[:19])
    assert "upload" in body["message"]
