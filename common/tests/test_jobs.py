"""The job record: what a `Job` reads of a document, and its transitions on the real
MongoDB-wire server (MONGODB_URI)."""

import dataclasses
import datetime as dt
import os
import threading
import uuid

import bson
import pytest
from bson import Binary, ObjectId
from gridfs.grid_file import DEFAULT_CHUNK_SIZE
from pymongo.common import MAX_BSON_SIZE

from mp3common.jobs import (
    CHUNK_SIZE_BYTES,
    AttemptEnd,
    AudioTrack,
    Job,
    Jobs,
    NotifyClaim,
    State,
    parse_id,
    public_view,
)
from mp3common.mongo import client
from mp3common.options import ConversionOptions


def _full_document() -> dict:
    """A `jobs` document with every field a job can have, each set (not its default).

    Times are whole milliseconds, as MongoDB stores them, so that it reads back equal.
    """
    moment = dt.datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=dt.UTC)
    mp3 = ObjectId()
    return {
        "_id": ObjectId(),
        "owner": "alice@example.com",
        "state": "done",
        "filename": "holiday.mp4",
        "size": 1000,
        "content_type": "video/mp4",
        "created_at": moment,
        "updated_at": moment + dt.timedelta(seconds=3),
        "finished_at": moment + dt.timedelta(seconds=3),
        "request_id": "r1",
        "published_at": moment + dt.timedelta(seconds=1),
        "republished": True,
        "attempts": 4,
        "failed_attempts": 1,
        "handed_back": 1,
        "mp3_uploads": [ObjectId(), mp3],
        "mp3_fid": mp3,
        "mp3_size": 500,
        "duration_seconds": 30.5,
        "audio_track": {"index": 2, "codec": "aac", "language": "eng"},
        "warning": "only 3.7 s of 10.0 s could be read; the file looks cut off",
        "reason": "a reason",
        "notify_claim": {"by": "notifier-1", "until": moment + dt.timedelta(seconds=60)},
        "notify_error": "451 try later",
        "notified_at": moment + dt.timedelta(seconds=4),
        "notify_failed_at": moment + dt.timedelta(seconds=2),
        "options": {"format": "opus", "quality": "96k", "start": 1.5, "quality_chosen": True},
        "notes": ["quality is ignored"],
        "max_media_seconds": 600.0,
        "retries": 1,
        "queued_at": moment + dt.timedelta(seconds=6),
        "progress": 50.0,
        "eta_seconds": 3.0,
        "copied": True,
        "tags": {"title": "Holiday"},
        "cover": True,
        "cancelled_at": moment + dt.timedelta(seconds=5),
        "expires_at": moment + dt.timedelta(days=7),
        "expired_at": moment + dt.timedelta(days=8),
    }


def test_a_job_reads_every_field_of_its_document():
    document = _full_document()
    job = Job.from_document(document)
    expected = {
        **document,
        "id": document["_id"],
        "state": State.DONE,
        "mp3_uploads": tuple(document["mp3_uploads"]),
        "notify_claim": NotifyClaim(**document["notify_claim"]),
        "audio_track": AudioTrack(**document["audio_track"]),
        "notes": tuple(document["notes"]),
        "options": ConversionOptions(**document["options"]),
    }
    del expected["_id"]
    # Every field of a Job is in the document: a field added to one is added to the other.
    assert {field.name for field in dataclasses.fields(Job)} == set(expected)
    nested = {
        "notify_claim": job.notify_claim,
        "audio_track": job.audio_track,
        "options": job.options,
    }
    assert dataclasses.asdict(job) | nested == expected
    assert job.state == "done" and job.finished


def test_a_minimal_document_reads_with_the_defaults():
    """What `Jobs.create` writes, before anyone touched the job."""
    job_id = ObjectId()
    job = Job.from_document({"_id": job_id, "owner": "ann@example.com", "state": "queued"})
    assert job == Job(id=job_id, owner="ann@example.com", state=State.QUEUED)
    assert (job.attempts, job.mp3_uploads, job.notify_claim, job.finished) == (0, (), None, False)


def test_fields_a_job_does_not_know_are_ignored():
    """Documents written by a newer (or older) version of a service still read."""
    document = _full_document()
    job = Job.from_document(document | {"added_later": 1, "swept": True})
    assert job == Job.from_document(document)
    assert not hasattr(job, "added_later")


@pytest.mark.parametrize("state", ["", "finished", None])
def test_a_document_in_no_known_state_is_refused(state):
    with pytest.raises(ValueError, match="is not a valid State"):
        Job.from_document({"_id": ObjectId(), "owner": "ann@example.com", "state": state})


@pytest.mark.parametrize(
    ("attempts", "failed_attempts", "handed_back", "crashed"),
    [
        (0, 0, 0, 0),  # never started
        (1, 0, 0, 0),  # the current attempt is not a crash (yet)
        (3, 0, 0, 2),  # two earlier attempts ended without a word
        (3, 1, 0, 1),
        (3, 1, 1, 0),  # every earlier attempt said how it ended
        (4, 0, 2, 1),
        (2, 1, 1, 0),  # the current attempt already counted (it failed): never below 0
    ],
)
def test_crashed_attempts_are_the_earlier_ones_that_ended_without_a_word(
    attempts, failed_attempts, handed_back, crashed
):
    document = {"_id": ObjectId(), "owner": "ann@example.com", "state": "converting"}
    job = Job.from_document(
        document
        | {"attempts": attempts, "failed_attempts": failed_attempts, "handed_back": handed_back}
    )
    assert job.crashed_attempts == crashed


def test_attempt_ends_are_counted_under_the_jobs_fields():
    fields = {field.name for field in dataclasses.fields(Job)}
    assert {how.value for how in AttemptEnd} <= fields


@pytest.fixture
def jobs():
    mongo = client(os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017"), app_name="tests")
    name = f"mp3test_{uuid.uuid4().hex[:10]}"
    store = Jobs(mongo[name])
    store.ensure_indexes()
    yield store
    mongo.drop_database(name)


def _new(jobs, owner="alice@example.com"):
    job_id = ObjectId()
    jobs.create(
        job_id, owner=owner, filename="clip.mp4", size=10, content_type="video/mp4", request_id="r1"
    )
    return job_id


@pytest.mark.stack
def test_a_job_goes_queued_converting_done(jobs):
    job_id = _new(jobs)
    assert jobs.get(job_id).state == "queued"
    assert jobs.start(job_id).attempts == 1
    mp3 = ObjectId()
    assert jobs.finish(job_id, mp3_fid=mp3, mp3_size=5, duration_seconds=1.5)
    view = public_view(jobs.get(job_id))
    assert view["state"] == "done" and view["mp3_fid"] == str(mp3) and view["mp3_size"] == 5
    assert view["created_at"].endswith("Z")


@pytest.mark.stack
def test_a_finished_job_never_moves_backwards(jobs):
    job_id = _new(jobs)
    jobs.start(job_id)
    assert jobs.fail(job_id, "the video has no audio track")
    assert jobs.start(job_id) is None  # a redelivery finds it final
    assert not jobs.finish(job_id, mp3_fid=ObjectId(), mp3_size=1, duration_seconds=None)
    assert not jobs.fail(job_id, "again")
    assert public_view(jobs.get(job_id))["reason"] == "the video has no audio track"


@pytest.mark.stack
def test_only_the_latest_attempt_may_finish_a_job(jobs):
    job_id = _new(jobs)
    first = jobs.start(job_id).attempts
    second = jobs.start(job_id).attempts  # the message was redelivered meanwhile
    assert not jobs.finish(
        job_id, mp3_fid=ObjectId(), mp3_size=1, duration_seconds=1.0, attempt=first
    )
    mp3 = ObjectId()
    assert jobs.finish(job_id, mp3_fid=mp3, mp3_size=1, duration_seconds=1.0, attempt=second)
    assert jobs.get(job_id).mp3_fid == mp3


@pytest.mark.stack
def test_a_stored_document_reads_back_as_the_same_job(jobs):
    document = _full_document()
    jobs.collection.insert_one(document)
    assert jobs.get(document["_id"]) == Job.from_document(document)


@pytest.mark.stack
def test_attempts_that_ended_with_a_word_are_counted_apart_from_crashes(jobs):
    job_id = _new(jobs)
    for _ in range(4):
        jobs.start(job_id)
    jobs.note_attempt_end(job_id, AttemptEnd.FAILED)
    jobs.note_attempt_end(job_id, AttemptEnd.HANDED_BACK)
    job = jobs.get(job_id)
    assert (job.attempts, job.failed_attempts, job.handed_back) == (4, 1, 1)
    assert job.crashed_attempts == 1


@pytest.mark.stack
def test_only_one_of_many_racing_notifiers_wins(jobs):
    job_id = _new(jobs)
    wins = []
    threads = [
        threading.Thread(target=lambda: wins.append(jobs.mark_notified(job_id))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1


@pytest.mark.stack
def test_owners_see_only_their_own_jobs_by_either_id(jobs):
    job_id = _new(jobs, owner="alice@example.com")
    jobs.start(job_id)
    mp3 = ObjectId()
    jobs.finish(job_id, mp3_fid=mp3, mp3_size=5, duration_seconds=1.0)
    assert jobs.for_owner(job_id, "alice@example.com").id == job_id
    assert jobs.for_owner(mp3, "alice@example.com").id == job_id
    assert jobs.for_owner(job_id, "mallory@example.com") is None


@pytest.mark.stack
def test_listing_is_newest_first_and_paginated(jobs):
    ids = [_new(jobs) for _ in range(5)]
    _new(jobs, owner="bob@example.com")
    page = jobs.list_for_owner("alice@example.com", limit=2, skip=0)
    assert [j.id for j in page] == ids[::-1][:2]
    page2 = jobs.list_for_owner("alice@example.com", limit=2, skip=4)
    assert [j.id for j in page2] == [ids[0]]
    assert jobs.count_for_owner("alice@example.com") == 5


@pytest.mark.parametrize("text", [None, "", "nope", "123", "z" * 24, "5f" * 13, "../etc"])
def test_malformed_ids_parse_to_none(text):
    assert parse_id(text) is None


def test_a_chunk_saves_round_trips_and_still_fits_in_one_document():
    """What the chunk size stands for: at least 4x fewer chunks than GridFS's default, and a
    chunk document, envelope included, far below MongoDB's document limit."""
    assert CHUNK_SIZE_BYTES >= 4 * DEFAULT_CHUNK_SIZE
    chunk = {
        "_id": ObjectId(),
        "files_id": ObjectId(),
        "n": 0,
        "data": Binary(bytes(CHUNK_SIZE_BYTES)),
    }
    assert len(bson.encode(chunk)) < MAX_BSON_SIZE / 4


def _finished(jobs):
    job_id = _new(jobs)
    jobs.start(job_id)
    jobs.finish(job_id, mp3_fid=ObjectId(), mp3_size=5, duration_seconds=1.0)
    return job_id


@pytest.mark.stack
def test_one_claimant_at_a_time_sends_a_jobs_mail(jobs):
    job_id = _finished(jobs)
    claimed = jobs.claim_notification(job_id, "a", lease_seconds=60)
    assert claimed.notify_claim.by == "a"
    assert jobs.claim_notification(job_id, "b", lease_seconds=60) is None
    assert jobs.claim_notification(job_id, "a", lease_seconds=60) is not None  # its own again
    jobs.release_notification(job_id, "a", error="451 try later")
    assert jobs.get(job_id).notify_error == "451 try later"
    assert jobs.claim_notification(job_id, "b", lease_seconds=60) is not None
    assert jobs.mark_notified(job_id)
    job = jobs.get(job_id)
    assert job.notify_claim is None and job.notify_error is None
    assert jobs.claim_notification(job_id, "c", lease_seconds=60) is None  # sent: never again


@pytest.mark.stack
def test_an_expired_claim_can_be_taken_over(jobs):
    job_id = _finished(jobs)
    assert jobs.claim_notification(job_id, "dead", lease_seconds=-1) is not None
    assert jobs.claim_notification(job_id, "alive", lease_seconds=60) is not None


@pytest.mark.stack
def test_an_unfinished_job_cannot_be_claimed(jobs):
    job_id = _new(jobs)
    assert jobs.claim_notification(job_id, "a", lease_seconds=60) is None
    jobs.release_notification(job_id, "nobody")  # releasing what one does not hold: no-op
    assert jobs.get(job_id).notify_claim is None


@pytest.mark.stack
def test_only_one_of_many_racing_claimants_wins(jobs):
    job_id = _finished(jobs)
    wins = []

    def claim(n):
        wins.append(jobs.claim_notification(job_id, f"c{n}", lease_seconds=60) is not None)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1


@pytest.mark.parametrize(
    ("changes", "mail"),
    [
        ({}, {"state": "pending", "reason": None}),
        ({"notify_error": "451 try later"}, {"state": "pending", "reason": "451 try later"}),
        (
            {"notified_at": dt.datetime(2024, 5, 1, tzinfo=dt.UTC)},
            {"state": "sent", "reason": None},
        ),
        (
            {"notify_error": "550 no such user", "notify_failed_at": dt.datetime(2024, 5, 1)},
            {"state": "failed", "reason": "550 no such user"},
        ),
    ],
)
def test_a_finished_jobs_view_says_what_became_of_its_mail(changes, mail):
    for state in ("done", "failed"):
        document = {"_id": ObjectId(), "owner": "ann@example.com", "state": state} | changes
        assert public_view(Job.from_document(document))["mail"] == mail


def test_an_unfinished_jobs_view_has_no_mail():
    for state in ("queued", "converting"):
        document = {"_id": ObjectId(), "owner": "ann@example.com", "state": state}
        assert "mail" not in public_view(Job.from_document(document))


@pytest.mark.stack
def test_a_mail_that_failed_for_good_shows_failed_until_it_goes(jobs):
    job_id = _new(jobs)
    jobs.start(job_id)
    jobs.fail(job_id, "the video has no audio track")
    assert jobs.claim_notification(job_id, "n1", lease_seconds=60)
    jobs.release_notification(job_id, "n1", error="451 try later")
    assert public_view(jobs.get(job_id))["mail"] == {"state": "pending", "reason": "451 try later"}
    assert jobs.claim_notification(job_id, "n1", lease_seconds=60)
    jobs.release_notification(job_id, "n1", error="550 no such user", final=True)
    job = jobs.get(job_id)
    assert job.notify_claim is None  # released: a replay from mp3.dlq can claim it
    assert public_view(job)["mail"] == {"state": "failed", "reason": "550 no such user"}
    assert jobs.claim_notification(job_id, "n2", lease_seconds=60)
    assert jobs.mark_notified(job_id)
    assert public_view(jobs.get(job_id))["mail"] == {"state": "sent", "reason": None}


@pytest.mark.stack
def test_a_job_whose_expiry_has_come_cannot_be_retried(jobs):
    """The expiry sweep may be removing its video already: a retry would find none."""
    kept, due = _new(jobs), _new(jobs)
    moment = dt.datetime.now(dt.UTC)
    jobs.fail(kept, "a reason", expires_at=moment + dt.timedelta(hours=1))
    jobs.fail(due, "a reason", expires_at=moment - dt.timedelta(seconds=1))
    assert jobs.retry(kept, "alice@example.com").state == "queued"
    assert jobs.retry(due, "alice@example.com") is None
    assert jobs.get(due).state == "failed"


@pytest.mark.stack
def test_the_outbox_relay_leaves_a_just_retried_job_to_the_retry_s_own_publish(jobs):
    """A retried job's created_at is old: the relay must wait from the retry, as it waits
    from an upload, or it publishes the job a second time beside the retry's publish."""
    job_id = _new(jobs)
    jobs.collection.update_one(
        {"_id": job_id}, {"$set": {"created_at": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)}}
    )
    jobs.fail(job_id, "a reason", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    jobs.retry(job_id, "alice@example.com")
    a_minute_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert jobs.claim_unpublished(a_minute_ago) is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)  # its publish never confirmed
    assert jobs.claim_unpublished(later).id == job_id
