"""Test helpers every service's tests and the system tests share (one copy, not four).

Here: RabbitMQ queues and consumers. `mp3testing.media` makes clips with ffmpeg's lavfi;
`mp3testing.users` makes users with the auth service's CLI. A distribution of its own
(common/testing), installed into the dev venv only, so that nothing a service ships carries
test code or its dependencies (`requests`, for the management API). Importing it connects
to nothing: the tests that need no stack import it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pika
import requests

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")


def _connection():
    return pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))


def get_message(queue: str, timeout: float = 10.0):
    """The next message on `queue` as (body, properties), acked; None if none comes in time."""
    connection = _connection()
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while True:  # at least once, even with no time to wait
            method, properties, body = channel.basic_get(queue)
            if method is not None:
                channel.basic_ack(method.delivery_tag)
                return body, properties
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
    finally:
        connection.close()


def queue_depth(queue: str) -> int:
    """Messages ready on `queue`. Not "handled": a delivered, unacked message is not counted;
    see `nothing_returns` for that."""
    connection = _connection()
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def nothing_returns(queue: str, timeout: float = 1.0) -> bool:
    """Call after the queue's consumers stopped: True when no message is ready or comes back.

    A message delivered but never acked goes back to the queue when its consumer's connection
    closes, so this proves every message was acked (or dead-lettered), which a depth of 0
    while the consumer runs does not. A message that does come back is taken off the queue.
    """
    return get_message(queue, timeout=timeout) is None


def delete_queues(*queues: str) -> None:
    """Delete each queue, its dead-letter queue and its exchanges, whether or not they exist."""
    connection = _connection()
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
            channel.queue_delete(f"{queue}.dlq")
            channel.exchange_delete(f"{queue}.exchange")
            channel.exchange_delete(f"{queue}.dlx")
    finally:
        connection.close()


def close_connections(name: str, *, prefix: bool = False) -> int:
    """Close from the broker's side (as an idle timeout or a network cut does) every
    connection called `name` (or starting with it); the number closed."""
    closed = 0
    for connection in requests.get(f"{MANAGEMENT_URL}/api/connections", timeout=5).json():
        given = connection.get("client_properties", {}).get("connection_name") or ""
        if given == name or (prefix and given.startswith(name)):
            requests.delete(
                f"{MANAGEMENT_URL}/api/connections/{quote(connection['name'], safe='')}",
                timeout=5,
            )
            closed += 1
    return closed


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll `predicate` until it is truthy or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class RunningConsumer:
    """A Consumer on a thread of the test process, stopped at the end of the `with`."""

    def __init__(self, consumer, join_timeout: float = 30.0):
        self.consumer = consumer
        self.join_timeout = join_timeout
        self.thread = threading.Thread(target=consumer.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.consumer.ready.wait(10), "the consumer did not connect"
        return self.consumer

    def __exit__(self, *exc):
        self.consumer.stop()
        self.thread.join(self.join_timeout)


def refusal_to_start(arguments: list[str], cwd: Path, environ: dict[str, str]) -> str:
    """Run `python <arguments>` in `cwd` with exactly `environ`, as an entry point that must
    refuse its settings: it exits non-zero, prints nothing on stdout and one line on
    stderr, which is returned."""
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    return line
