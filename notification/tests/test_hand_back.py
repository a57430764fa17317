"""A notifier stopped (SIGTERM) while it waits hands its message back: a warning, not an error."""

import logging

import pytest
from conftest import finished_job, free_port, publish

from mp3common.messages import Mp3Message
from mp3testing import RunningConsumer, get_message, wait_until
from notification_service import create_consumer

pytestmark = pytest.mark.stack  # the shared Consumer on RabbitMQ, jobs in MongoDB


def test_a_stop_during_the_retry_backoff_hands_the_message_back(environ, jobs, caplog):
    job = finished_job(jobs)
    down = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port()), "SMTP_SECURITY": "none"}
    slow = {"SMTP_RETRY_BACKOFF_SECONDS": "30", "SMTP_RETRY_MAX_BACKOFF_SECONDS": "30"}
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    consumer = create_consumer(environ | down | slow)
    caplog.set_level(logging.INFO)
    with RunningConsumer(consumer):
        # The first attempt failed; the notifier waits 30 s before the next one.
        assert wait_until(lambda: jobs.get(job.id).notify_error)
        consumer.stop()  # what SIGTERM does
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    [handed_back] = [r for r in caplog.records if "handing the message back" in r.getMessage()]
    assert handed_back.levelno == logging.WARNING and handed_back.exc_info is None
    assert get_message(environ["MP3_QUEUE"]) is not None  # back on the queue, not lost
    assert jobs.get(job.id).notified_at is None
