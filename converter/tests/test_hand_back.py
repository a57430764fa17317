"""A stop (SIGTERM) hands a job back: not a failed attempt, not a crash, not an error."""

import threading

import media
import pytest

from converter_service import settings as settings_module
from converter_service.handler import GAVE_UP, JobHandler
from mp3common.amqp import DELIVERY_LIMIT, Delivery, HandBack, PermanentError

pytestmark = pytest.mark.stack  # jobs in MongoDB


def _stopped(world, job_id, delivery_count, delivery_limit=DELIVERY_LIMIT):
    """The job's message delivered to a converter that has been asked to stop."""
    handler = JobHandler(settings_module.load(world.environ()), world.database)
    stopping = threading.Event()
    stopping.set()
    delivery = Delivery(
        {"video_fid": str(job_id)}, {}, delivery_count > 0, delivery_count, delivery_limit
    )
    return handler(delivery, stopping)


def test_handed_back_attempts_count_as_neither_failures_nor_crashes(world, media_dir):
    job_id = world.upload(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    for delivery_count in (0, 1):
        with pytest.raises(HandBack, match=str(job_id)):
            _stopped(world, job_id, delivery_count)
    job = world.jobs.get(job_id)
    assert (job.state, job.attempts, job.handed_back) == ("converting", 2, 1 + 1)
    assert job.failed_attempts == 0
    # Two attempts that ended with a word: on the last delivery it is converted, not
    # failed as a job that keeps crashing its converter.
    handler = JobHandler(settings_module.load(world.environ()), world.database)
    last = Delivery({"video_fid": str(job_id)}, {}, True, DELIVERY_LIMIT, DELIVERY_LIMIT)
    (message,) = handler(last, threading.Event())
    assert message.body["state"] == "done"


def test_stopped_on_its_last_delivery_a_job_is_failed_for_its_owner(world, media_dir):
    """Handed back then, the broker would dead-letter it with nobody told."""
    job_id = world.upload(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    with pytest.raises(PermanentError) as raised:
        _stopped(world, job_id, delivery_count=2, delivery_limit=2)
    job = world.jobs.get(job_id)
    assert (job.state, job.reason) == ("failed", GAVE_UP)
    (told,) = raised.value.outgoing
    assert told.queue == world.mp3_queue
    assert (told.body["state"], told.body["reason"]) == ("failed", GAVE_UP)
