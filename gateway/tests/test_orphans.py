"""Uploads whose gateway worker died mid-way are removed once their mark is stale."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId
from conftest import upload

from gateway_service.errors import UploadExpired
from gateway_service.gridfs_writer import GridFSUpload, in_progress
from gateway_service.orphans import remove_abandoned_uploads
from mp3common.jobs import CHUNK_SIZE_BYTES, VIDEO_BUCKET

pytestmark = pytest.mark.stack  # GridFS on the real MongoDB-wire server

MiB = 1024 * 1024


def _half_written(database, mib: int = 3, *, minutes_ago: float = 0) -> ObjectId:
    """An upload as a worker killed mid-way leaves it: chunks, a mark, no files document."""
    fid = ObjectId()
    writer = GridFSUpload(database, VIDEO_BUCKET, fid, "clip.mp4", {"owner": "a@example.com"})
    writer.write(b"\0" * (mib * MiB))
    writer._submit()  # the batch in hand goes in, as the next write would have sent it
    writer._wait()
    writer._executor.shutdown()
    touched = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    in_progress(database, VIDEO_BUCKET).update_one({"_id": fid}, {"$set": {"touched_at": touched}})
    return fid


def _chunks(database, fid: ObjectId) -> int:
    return database[f"{VIDEO_BUCKET}.chunks"].count_documents({"files_id": fid})


def test_a_stale_half_written_upload_is_removed_and_a_live_one_kept(database):
    dead = _half_written(database, minutes_ago=20)
    live = _half_written(database, minutes_ago=1)
    assert _chunks(database, dead) == 3 and _chunks(database, live) == 3

    assert remove_abandoned_uploads(database, older_than_seconds=600) == 1
    assert _chunks(database, dead) == 0
    assert _chunks(database, live) == 3
    assert in_progress(database, VIDEO_BUCKET).find_one({"_id": dead}) is None
    assert remove_abandoned_uploads(database, older_than_seconds=600) == 0


def test_a_whole_file_without_a_job_is_removed_but_one_with_a_job_kept(database, stored):
    """Workers killed after writing the file: before its job (an orphan), and after it but
    before the mark went (not an orphan: only the mark goes)."""
    orphan = _half_written(database, minutes_ago=20)
    owned = _half_written(database, minutes_ago=20)
    for fid in (orphan, owned):
        database[f"{VIDEO_BUCKET}.files"].insert_one(
            {"_id": fid, "length": 3 * MiB, "chunkSize": CHUNK_SIZE_BYTES}
        )
    stored.jobs.create(
        owned, owner="a", filename="c.mp4", size=3 * MiB, content_type="video/mp4", request_id=None
    )
    assert remove_abandoned_uploads(database, older_than_seconds=600) == 1
    assert stored.counts() == {"files": 1, "chunks": 3, "jobs": 1}
    assert database[f"{VIDEO_BUCKET}.files"].find_one({"_id": owned}) is not None
    assert in_progress(database, VIDEO_BUCKET).count_documents({}) == 0


def test_an_upload_taken_for_an_orphan_cannot_finish(database):
    """It paused past the grace period and the sweep removed its chunks: it must not
    become a file with holes in it."""
    fid = ObjectId()
    writer = GridFSUpload(database, VIDEO_BUCKET, fid, "clip.mp4", {})
    writer.write(b"\0" * (5 * MiB))
    in_progress(database, VIDEO_BUCKET).update_one(
        {"_id": fid}, {"$set": {"touched_at": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)}}
    )
    writer._wait()
    assert remove_abandoned_uploads(database, older_than_seconds=600) == 1
    with pytest.raises(UploadExpired):
        writer.close()
    writer.abort()
    assert database[f"{VIDEO_BUCKET}.files"].count_documents({}) == 0
    assert _chunks(database, fid) == 0


def test_uploads_leave_no_mark(client, alice, media, stored, database):
    """A stored upload and a refused one both remove their mark."""
    assert upload(client, alice, [("file", "clip.mp4", media["mp4"])]).status_code == 202
    refused = upload(client, alice, [("file", "a.mp4", media["mp4"]), ("file", "b", b"x")])
    assert refused.status_code == 400
    assert in_progress(database, VIDEO_BUCKET).count_documents({}) == 0
    assert stored.counts()["files"] == 1
