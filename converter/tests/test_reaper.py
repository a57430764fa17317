"""The reaper of `video.dlq`: every dead-lettered job ends final, and its owner hears."""

import threading

import pytest
from bson import ObjectId

from converter_service import settings as settings_module
from converter_service.handler import CRASHED, GAVE_UP
from converter_service.reaper import DeadLetterReaper, dead_letter_reason
from mp3common.amqp import DELIVERY_LIMIT, Delivery
from mp3common.jobs import AttemptEnd, now


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-death": [{"reason": "delivery_limit", "queue": "video"}]}, "delivery_limit"),
        ({"x-death": [{"reason": b"rejected"}]}, "rejected"),
        ({"x-death": []}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_the_dead_letter_reason_is_the_latest_x_death(headers, reason):
    assert dead_letter_reason(headers) == reason


def _reap(world, job_id, why: str):
    reaper = DeadLetterReaper(settings_module.load(world.environ()), world.database)
    headers = {"x-death": [{"reason": why, "queue": world.video_queue}]}
    delivery = Delivery({"video_fid": str(job_id)}, headers, False, 0, DELIVERY_LIMIT)
    return reaper(delivery, threading.Event())


def _job(world, starts: int = 1):
    job_id = ObjectId()
    world.jobs.create(
        job_id, owner="ann@example.com", filename="x.mp4", size=1, content_type=None, request_id=""
    )
    for _ in range(starts):
        world.jobs.start(job_id)
    return job_id


@pytest.mark.stack
@pytest.mark.parametrize(
    ("ended", "reason"),
    [({}, CRASHED), ({AttemptEnd.HANDED_BACK: 1}, GAVE_UP)],
    ids=["its-converter-died", "handed-back-at-the-end-of-a-stop"],
)
def test_a_job_left_converting_is_failed_and_its_owner_told(world, ended, reason):
    job_id = _job(world)
    for how, times in ended.items():
        for _ in range(times):
            world.jobs.note_attempt_end(job_id, how)
    (told,) = _reap(world, job_id, "delivery_limit")
    job = world.jobs.get(job_id)
    assert (job.state, job.reason) == ("failed", reason)
    assert round((job.expires_at - job.finished_at).total_seconds()) == 7 * 86400  # its video
    assert told.queue == world.mp3_queue
    assert (told.body["state"], told.body["reason"]) == ("failed", reason)
    assert _reap(world, job_id, "delivery_limit") == [told]  # until the owner is mailed
    world.jobs.claim_notification(job_id, "n", lease_seconds=5)
    world.jobs.mark_notified(job_id)
    assert _reap(world, job_id, "delivery_limit") == []


@pytest.mark.stack
def test_a_done_job_whose_message_was_lost_on_the_last_delivery_is_reported(world):
    job_id = _job(world)
    world.jobs.finish(job_id, mp3_fid=ObjectId(), mp3_size=1, duration_seconds=1.0)
    (told,) = _reap(world, job_id, "delivery_limit")
    assert told.body["state"] == "done" and world.jobs.get(job_id).state == "done"


@pytest.mark.stack
def test_a_job_the_converter_failed_and_reported_itself_is_left_alone(world):
    job_id = _job(world)
    world.jobs.fail(job_id, "the video has no audio track")
    assert _reap(world, job_id, "rejected") == []  # its mp3 message went before the reject
    assert world.jobs.get(job_id).reason == "the video has no audio track"


@pytest.mark.stack
def test_a_job_its_owner_cancelled_is_left_alone(world):
    """Dead-lettered by the limit after its owner cancelled it: no mail (the owner did it)."""
    job_id = _job(world)
    world.jobs.cancel(job_id, "ann@example.com", expires_at=now())
    assert _reap(world, job_id, "delivery_limit") == []
    assert world.jobs.get(job_id).state == "cancelled"


@pytest.mark.stack
def test_a_dead_letter_naming_no_job_is_dropped(world):
    assert _reap(world, ObjectId(), "rejected") == []
    reaper = DeadLetterReaper(settings_module.load(world.environ()), world.database)
    delivery = Delivery({"video_fid": "not-an-id"}, {}, False, 0, DELIVERY_LIMIT)
    assert reaper(delivery, threading.Event()) == []
