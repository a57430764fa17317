"""Fixtures on the real RabbitMQ that `make run` provides (RABBITMQ_URL from var/dev.env)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from urllib.parse import quote

import pika
import pytest
import requests

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")


@pytest.fixture
def queue_name():
    """A fresh queue name per test; the queue and its DLQ are deleted afterwards."""
    name = f"test.{uuid.uuid4().hex[:10]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    for queue in (name, f"{name}.dlq", f"{name}.out", f"{name}.out.dlq"):
        channel.queue_delete(queue)
    connection.close()


def get_message(queue: str, timeout: float = 10.0):
    """The next message on `queue` (body, properties), acked; None if none comes in time."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue)
            if method is not None:
                channel.basic_ack(method.delivery_tag)
                return body, properties
            time.sleep(0.1)
        return None
    finally:
        connection.close()


def close_connections(name: str) -> int:
    """Close, from the broker's side, every connection called `name` (as an idle timeout does)."""
    closed = 0
    for connection in requests.get(f"{MANAGEMENT_URL}/api/connections", timeout=5).json():
        if connection.get("client_properties", {}).get("connection_name") == name:
            requests.delete(
                f"{MANAGEMENT_URL}/api/connections/{quote(connection['name'], safe='')}",
                timeout=5,
            ).raise_for_status()
            closed += 1
    return closed


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class RunningConsumer:
    """A Consumer on its own thread, stopped at the end of the test."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.thread = threading.Thread(target=consumer.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.consumer.ready.wait(10), "consumer did not connect"
        return self.consumer

    def __exit__(self, *exc):
        self.consumer.stop()
        self.thread.join(15)
