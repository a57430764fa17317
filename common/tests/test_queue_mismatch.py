"""A queue that exists with other arguments (the reference's hand-made classic queues): said
once, with the fix, and the fix (`python -m mp3common.migrate_queue`) loses no message.
All on the real RabbitMQ of `make run`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pika
import pytest

from mp3common.amqp import (
    Consumer,
    Publisher,
    PublishError,
    QueueMismatch,
    declare_queue,
    migrate_command,
)
from mp3common.migrate_queue import migrate, temporary_queue
from mp3testing import RABBITMQ_URL, delete_queues, wait_until

pytestmark = pytest.mark.stack


@pytest.fixture
def classic(queue_name):
    """`queue_name` made by hand as the reference's users did: a classic queue, and a
    classic .dlq, each holding messages (with headers and properties to keep)."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    channel.confirm_delivery()
    for name, count in ((queue_name, 25), (f"{queue_name}.dlq", 3)):
        channel.queue_declare(name, durable=True)
        for n in range(count):
            channel.basic_publish(
                "",
                name,
                json.dumps({"video_fid": f"{n:024x}", "queue": name}).encode(),
                pika.BasicProperties(
                    delivery_mode=2, message_id=f"m{n}", headers={"x-request-id": f"r{n}"}
                ),
                mandatory=True,
            )
    connection.close()
    yield queue_name
    delete_queues(temporary_queue(queue_name), temporary_queue(f"{queue_name}.dlq"))


def _drain(queue: str) -> list[tuple[dict, str, dict]]:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((json.loads(body), properties.message_id, properties.headers or {}))
    finally:
        connection.close()


def _declare(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        declare_queue(connection.channel(), queue)
    finally:
        if connection.is_open:
            connection.close()


def test_a_mismatched_queue_is_named_once_with_what_differs_and_the_fix(classic, caplog):
    caplog.set_level(logging.INFO, logger="mp3common.amqp")
    for _ in range(3):
        with pytest.raises(QueueMismatch) as raised:
            _declare(classic)
    message = str(raised.value)
    assert f"queue '{classic}.dlq' exists with other arguments" in message
    assert "x-queue-type" in message and "current is none" in message  # what exists
    assert "declared: x-queue-type=quorum" in message  # what is declared
    assert migrate_command(classic) in message  # the fix, for the main queue
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [message]  # once, not per attempt
    # A publisher says the same (the gateway answers 503 with it), and it is a PublishError.
    publisher = Publisher(RABBITMQ_URL, [classic])
    with pytest.raises(PublishError, match="exists with other arguments"):
        publisher.publish(classic, {"n": 1})
    publisher.close()


def test_migrating_moves_every_message_into_the_declared_quorum_queues(classic):
    done = subprocess.run(
        [sys.executable, "-m", "mp3common.migrate_queue", classic, "--url", RABBITMQ_URL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"{classic}: as declared, 25 message(s) moved in" in done.stdout
    assert f"{classic}.dlq: as declared, 3 message(s) moved in" in done.stdout
    _declare(classic)  # no mismatch any more: both are what every service declares
    main, dead = _drain(classic), _drain(f"{classic}.dlq")
    assert [(body["video_fid"], mid) for body, mid, _ in main] == [
        (f"{n:024x}", f"m{n}") for n in range(25)
    ]  # every message, in order, with its properties
    assert [headers["x-request-id"] for _, _, headers in main] == [f"r{n}" for n in range(25)]
    assert [body["video_fid"] for body, _, _ in dead] == [f"{n:024x}" for n in range(3)]
    # Run again: nothing to do, and no temporary queue left behind.
    again = subprocess.run(
        [sys.executable, "-m", "mp3common.migrate_queue", classic, "--url", RABBITMQ_URL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and f"{classic}: as declared, 0 message(s)" in again.stdout
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare(temporary_queue(classic), passive=True)
    connection.close()


def test_a_consumer_waits_for_the_fix_then_consumes(classic, caplog):
    caplog.set_level(logging.INFO)
    seen = []
    got = threading.Event()

    def handler(delivery, stopping):
        seen.append(delivery.body["video_fid"])
        if len(seen) == 25:
            got.set()

    consumer = Consumer(RABBITMQ_URL, classic, handler, max_backoff_seconds=0.5)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        assert wait_until(
            lambda: any("exists with other arguments" in r.getMessage() for r in caplog.records)
        )
        assert not consumer.ready.is_set() and thread.is_alive()  # waiting, not crashed
        migrate(RABBITMQ_URL, classic)
        assert got.wait(20), seen
    finally:
        consumer.stop()
        thread.join(10)
    said = [r for r in caplog.records if r.name == "mp3common.amqp" and r.levelno >= logging.ERROR]
    assert len(said) == 1 and "exists with other arguments" in said[0].getMessage()
