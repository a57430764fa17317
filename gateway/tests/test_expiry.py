"""The expiry sweep (issue 13): a finished job's output (done) or kept video (failed,
cancelled) is removed once its time has come, by exactly one of the sweepers."""

import datetime as dt
import threading

import pytest
from bson import ObjectId
from conftest import upload
from gridfs import GridFSBucket

from gateway_service.expiry import ExpirySweep, remove_expired
from gateway_service.settings import load
from gateway_service.storage import Storage
from mp3common.jobs import MP3_BUCKET, VIDEO_BUCKET, now
from mp3testing import wait_until

pytestmark = pytest.mark.stack  # jobs and files in MongoDB

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def storage(environ):
    return Storage(load(environ))


def _job(client, user, media, stored, state: str, expires_in: dt.timedelta) -> ObjectId:
    """A job of `user`'s in `state`, expiring `expires_in` from now."""
    fid = ObjectId(upload(client, user, [("file", "clip.mp4", media["mp4"])]).get_json()["fid"])
    if state == "done":
        stored.finish_job(str(fid), b"converted")
    elif state == "failed":
        stored.jobs.fail(fid, "a reason")
    stored.jobs.collection.update_one({"_id": fid}, {"$set": {"expires_at": now() + expires_in}})
    return fid


def _files(stored, bucket: str) -> int:
    return stored.database[f"{bucket}.files"].count_documents({})


def test_a_done_jobs_output_is_removed_and_its_record_kept(client, alice, media, stored, storage):
    fid = _job(client, alice, media, stored, "done", -HOUR)
    assert remove_expired(storage, "sweeper-1") == 1
    assert _files(stored, MP3_BUCKET) == 0
    assert stored.database[f"{MP3_BUCKET}.chunks"].count_documents({}) == 0
    job = stored.jobs.get(fid)
    assert job.expired_at is not None
    status = client.get(f"/status?fid={fid}", headers=alice.headers).get_json()
    assert status["expired"] is True
    assert client.get(f"/download?fid={fid}", headers=alice.headers).status_code == 410
    assert remove_expired(storage, "sweeper-1") == 0  # once


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_a_failed_or_cancelled_jobs_video_is_removed(client, alice, media, stored, storage, state):
    fid = _job(client, alice, media, stored, "failed", -HOUR)
    if state == "cancelled":
        stored.jobs.collection.update_one({"_id": fid}, {"$set": {"state": "cancelled"}})
    assert remove_expired(storage, "sweeper-1") == 1
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 1}
    assert client.post(f"/jobs/{fid}/retry", headers=alice.headers).status_code == 410


def test_what_has_not_expired_stays(client, alice, media, stored, storage):
    _job(client, alice, media, stored, "done", HOUR)
    _job(client, alice, media, stored, "failed", HOUR)
    upload(client, alice, [("file", "clip.mp4", media["mp4"])])  # queued: no expiry
    before = (stored.counts(), _files(stored, MP3_BUCKET))
    assert remove_expired(storage, "sweeper-1") == 0
    assert (stored.counts(), _files(stored, MP3_BUCKET)) == before


def test_two_sweepers_at_once_remove_each_job_once(client, alice, media, stored, storage):
    fids = [_job(client, alice, media, stored, "done", -HOUR) for _ in range(8)]
    removed: dict[str, int] = {}
    start = threading.Barrier(2)

    def sweep(name: str) -> None:
        start.wait()
        removed[name] = remove_expired(storage, name)

    sweepers = [threading.Thread(target=sweep, args=(f"sweeper-{n}",)) for n in (1, 2)]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join(30)
    assert sum(removed.values()) == len(fids)
    assert all(stored.jobs.get(fid).expired_at is not None for fid in fids)
    assert _files(stored, MP3_BUCKET) == 0


def test_a_job_another_sweeper_holds_is_left_to_it(client, alice, media, stored, storage):
    fid = _job(client, alice, media, stored, "done", -HOUR)
    assert stored.jobs.claim_expired("sweeper-1", lease_seconds=600).id == fid
    assert remove_expired(storage, "sweeper-2") == 0
    assert _files(stored, MP3_BUCKET) == 1  # sweeper-1's to remove
    stored.jobs.collection.update_one(
        {"_id": fid}, {"$set": {"expiry_claim.until": now() - HOUR}}
    )  # sweeper-1 died: its lease ran out
    assert remove_expired(storage, "sweeper-2") == 1


def test_an_output_a_dead_attempt_left_goes_too(client, alice, media, stored, storage):
    fid = _job(client, alice, media, stored, "failed", -HOUR)
    leftover = GridFSBucket(stored.database, MP3_BUCKET).upload_from_stream("x.mp3", b"half")
    stored.jobs.note_mp3_upload(fid, leftover)
    remove_expired(storage, "sweeper-1")
    assert _files(stored, MP3_BUCKET) == 0 and _files(stored, VIDEO_BUCKET) == 0


def test_the_sweep_runs_in_the_background(client, alice, media, stored, storage):
    fid = _job(client, alice, media, stored, "done", -HOUR)
    sweep = ExpirySweep(storage, interval_seconds=0.2)
    sweep.start()
    try:
        assert wait_until(lambda: stored.jobs.get(fid).expired_at is not None, timeout=10)
    finally:
        sweep.stopped.set()
        sweep.join(5)
