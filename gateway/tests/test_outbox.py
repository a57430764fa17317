"""A job whose upload stopped between the database and the queue is queued after all."""

import datetime as dt
import json

import pytest
from bson import ObjectId
from conftest import upload

from gateway_service.outbox import OutboxRelay, relay_unpublished
from gateway_service.publishing import JobPublisher
from gateway_service.settings import load
from gateway_service.storage import Storage
from mp3testing import get_message, wait_until

pytestmark = pytest.mark.stack  # jobs in MongoDB, messages on RabbitMQ


def _stranded(stored, minutes_ago: float) -> ObjectId:
    """A job as a gateway worker killed right after writing it leaves it: never published."""
    job_id = ObjectId()
    stored.jobs.create(
        job_id,
        owner="ann@example.com",
        filename="clip.mp4",
        size=10,
        content_type="video/mp4",
        request_id="r",
    )
    created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    stored.jobs.collection.update_one({"_id": job_id}, {"$set": {"created_at": created}})
    return job_id


def test_an_upload_records_that_its_message_was_confirmed(client, alice, media, stored):
    fid = upload(client, alice, [("file", "clip.mp4", media["mp4"])]).get_json()["fid"]
    assert stored.jobs.get(ObjectId(fid)).published_at is not None


def test_a_stranded_job_is_published_once(environ, stored, queue_name):
    stranded, fresh = _stranded(stored, minutes_ago=5), _stranded(stored, minutes_ago=0)
    publisher = JobPublisher(load(environ))
    try:
        assert relay_unpublished(stored.jobs, publisher, older_than_seconds=120) == 1
        assert relay_unpublished(stored.jobs, publisher, older_than_seconds=120) == 0
    finally:
        publisher.close()
    body, _ = get_message(queue_name)
    assert json.loads(body)["video_fid"] == str(stranded)
    assert get_message(queue_name, timeout=0.5) is None  # not the fresh one, not twice
    assert stored.jobs.get(stranded).republished is True
    assert stored.jobs.get(fresh).published_at is None


def test_a_job_the_broker_refuses_stays_unpublished_for_the_next_round(environ, stored):
    stranded = _stranded(stored, minutes_ago=5)
    down = JobPublisher(
        load(
            {
                **environ,
                "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
                "RABBITMQ_TIMEOUT_SECONDS": "1",
            }
        )
    )
    assert relay_unpublished(stored.jobs, down, older_than_seconds=120) == 0
    assert stored.jobs.get(stranded).published_at is None


def test_the_outbox_relay_runs_in_the_background(environ, stored, queue_name):
    stranded = _stranded(stored, minutes_ago=5)
    settings = load(environ)
    publisher = JobPublisher(settings)
    publisher.check()  # declares the test's queue, so it can be watched from the start
    relay = OutboxRelay(Storage(settings), publisher, interval_seconds=0.2, older_than_seconds=60)
    relay.start()
    try:
        message = wait_until(lambda: get_message(queue_name, timeout=0.2), timeout=10)
    finally:
        relay.stopped.set()
        relay.join(5)
        publisher.close()
    assert message is not None and json.loads(message[0])["video_fid"] == str(stranded)
