"""A `video` queue made by hand as a classic queue (as the reference's users did): every
upload answers 503 saying the queue is misconfigured, keeps nothing, and the log names the
problem and its fix once (not "RabbitMQ is unavailable … reconnecting" forever)."""

import logging

import pika
import pytest
from conftest import RABBITMQ_URL, upload

pytestmark = pytest.mark.stack


@pytest.fixture
def classic_queue(queue_name):
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    connection.channel().queue_declare(queue_name, durable=True)  # classic, no arguments
    connection.close()
    return queue_name


def test_a_classic_video_queue_is_a_503_that_says_so_and_is_logged_once(
    client, alice, media, stored, classic_queue, caplog
):
    caplog.set_level(logging.INFO)
    for name in ("a.mp4", "b.mp4"):
        response = upload(client, alice, [("file", name, media["mp4"])])
        assert response.status_code == 503
        body = response.get_json()
        assert body["error"] == "queue_unavailable"
        assert "misconfigured" in body["message"]
    assert stored.counts() == {"files": 0, "chunks": 0, "jobs": 0}
    said = [
        r.getMessage() for r in caplog.records if "exists with other arguments" in r.getMessage()
    ]
    assert len(said) == 1  # once, with the fix
    assert "python -m mp3common.migrate_queue" in said[0]
